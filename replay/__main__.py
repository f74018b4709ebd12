"""`python -m replay ...` is `tierstream replay ...`."""

import sys

from cli.main import main

sys.exit(main(["replay", *sys.argv[1:]]))
