"""Benchmarks (`make bench`, `make bench-quick`): figures go to bench/results/ and docs/benchmarks.md."""
