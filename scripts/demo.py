"""Twin of `ide demo`: same arguments (python scripts/demo.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
