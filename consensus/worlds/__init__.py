"""Worlds to work in: the demo world (the four associations) and the scale world (benchmarks)."""
