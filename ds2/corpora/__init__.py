"""Corpora that Lhotse does not prepare itself."""
