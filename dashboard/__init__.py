"""The dashboard: an HTTP API, a live feed and one static page over the read models."""
