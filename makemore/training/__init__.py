"""Training: the LightningModule, optimizers and schedules, weight averaging, checkpoints."""
