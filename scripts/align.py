"""Twin of `ide align`: same arguments (python scripts/align.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["align", *sys.argv[1:]]))
