"""Experiments: demo, datasets, sweeps, reports and benchmarks (not installed with the library)."""
