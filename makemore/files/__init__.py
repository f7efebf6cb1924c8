"""What training and inference both keep on disk: files written whole (atomic_io), run directories
and their lock (runs), a checkpoint file read safely with its digest check (checkpoint_file)."""
