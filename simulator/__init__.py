"""The workload simulator: realistic, seeded input events in the contract (`tierstream simulate`)."""
