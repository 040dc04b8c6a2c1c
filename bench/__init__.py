"""Benchmarks: `python -m bench` (see bench/__main__.py). Not part of the test run."""
