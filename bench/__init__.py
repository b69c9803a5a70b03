"""Benchmarks (never timed tests): each reports ratios against a baseline of the same run."""
