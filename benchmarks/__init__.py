"""Benchmarks run by `make bench`: medians of several runs, never timed tests."""
