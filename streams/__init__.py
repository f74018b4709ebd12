"""streams: the live worker — the Faust app, ingest into the ledger, the event-time clock, evaluate."""
