"""`python -m replay ...` is `tierstream replay ...`."""

import sys

from streams.cli import main

sys.exit(main(["replay", *sys.argv[1:]]))
