"""Benchmarks: `make bench` runs them and prints one `name: value` line per figure."""
