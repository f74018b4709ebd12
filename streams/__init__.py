"""streams: the Faust app, topics, ingest, clock, evaluate and the `tierstream` CLI."""
