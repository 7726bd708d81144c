"""Benchmarks (`make bench`, `make bench-quick`): results in bench/results/, docs/benchmarks.md."""
