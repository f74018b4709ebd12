"""projections: the Redis state store, its key layout, its fenced commit and the dashboard read models."""
