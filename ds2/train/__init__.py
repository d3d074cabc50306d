"""Training: the loop, distributed set-up, validation, averaging, logging and curves."""
