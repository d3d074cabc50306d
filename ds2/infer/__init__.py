"""Using a trained model outside a recipe: transcription (`Transcriber`), streaming
(`StreamingRecognizer`), and export (`ds2 export`). Importing this package loads no torch:
the onnxruntime backend runs without it."""


class ModelError(ValueError):
    """A model that cannot be used as asked (the message is one line, naming the file)."""
