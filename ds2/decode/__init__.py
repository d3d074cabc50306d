"""Decoding CTC log-probabilities into text."""
