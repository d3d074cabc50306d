"""Training: the loop, checkpoints, config resolution, logging and curves."""
