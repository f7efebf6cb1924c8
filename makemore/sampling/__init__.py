"""Drawing items from any net and scoring them, for training (samples during fit) and inference
alike: sampling controls (controls.py), the slow reference decoder (decoding.py), sampling and
scoring (generate.py)."""
