"""Hand-built layers, attention and recurrent cells, each tested against its PyTorch reference."""
