"""ds2: Deep Speech 2 recipes on Lhotse, PyTorch and the k2-fsa OpenFst tools."""

__version__ = "0.1.0"
