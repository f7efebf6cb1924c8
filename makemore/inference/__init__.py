"""Using a trained model: loading it safely, predict; constraints, sampling under them, the best
items."""
