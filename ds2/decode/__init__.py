"""Decoding CTC log-probabilities into text; the methods are declared in ds2.decode.methods.REGISTRY."""
