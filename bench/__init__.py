"""bench: the benchmarks, the capacity model and the soak, on the simulator's workloads."""
