"""tiering: the member-programme rulebook as a pure fold (no I/O, no clocks)."""
