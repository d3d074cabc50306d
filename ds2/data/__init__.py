"""Features, the CutSet-to-batch dataset, samplers (SortaGrad) and augmentation."""
