"""The command line: `tierstream <command>` parses its arguments and hands them to the room that does the work."""
