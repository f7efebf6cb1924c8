"""Hand-built layers, attention and recurrent cells, each tested against its PyTorch reference;
the collectives that several processes training one model (DDP) share, which the synchronised
BatchNorm needs too."""
