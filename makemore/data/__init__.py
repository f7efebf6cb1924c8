"""Reading items, their vocabulary, split and example tensors, and the batches of a run."""
