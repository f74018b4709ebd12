"""replay: the same fold over a JSONL file or the ledger, for rebuilds, audits and what-ifs."""
