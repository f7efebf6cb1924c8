"""Using a trained model: decoding, sampling controls, sampling and scoring, constraints (sampling
under them, the best items), loading, predict."""
