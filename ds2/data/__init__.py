"""Features, the CutSet-to-batch dataset, samplers (SortaGrad) and augmentation."""

# Seconds of audio per batch of validation, `ds2 average` and `ds2 decode`: one batching for all
# three, so their greedy CERs agree. Here rather than in sampler.py, so that the CLI can show it
# without importing Lhotse.
EVAL_MAX_DURATION = 300.0
