"""Using a trained model: decoding, sampling controls, sampling and scoring, loading, predict."""
