"""Benchmarks of the agent footprint and the reference server at fleet scale (see README)."""
