"""projections: the Redis state store, key layout, and dashboard read models."""
