"""Benchmarks of pavedroad at catalog scale; see bench/README.md. Each script prints figures."""
