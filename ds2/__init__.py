"""ds2: Deep Speech 2 recipes on Lhotse, PyTorch and the k2-fsa OpenFst tools."""

__version__ = "0.1.0"


def __getattr__(name):
    # `from ds2 import Transcriber` without importing torch, or anything, until asked
    if name == "Transcriber":
        from ds2.infer.transcriber import Transcriber

        return Transcriber
    if name == "StreamingRecognizer":
        from ds2.infer.stream import StreamingRecognizer

        return StreamingRecognizer
    raise AttributeError(f"module 'ds2' has no attribute {name!r}")
