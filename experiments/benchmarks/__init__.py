"""Benchmarks: `python -m experiments.benchmarks` runs them all and prints tables."""
