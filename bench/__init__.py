"""Benchmarks: figures for quality and speed, run by hand (`python -m bench.retrieval`), never timed in tests."""
