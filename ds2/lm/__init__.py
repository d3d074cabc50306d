"""Word n-gram language models: KenLM estimation and queries, and G.fst for graph decoding."""
