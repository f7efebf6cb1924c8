"""Nets that wrap other nets: an ensemble, and the new-items correction."""
