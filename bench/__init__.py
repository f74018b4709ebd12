"""bench: the workload simulator and the benchmarks that run on it."""
