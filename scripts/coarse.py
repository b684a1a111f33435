"""Twin of `ide coarse`: same arguments (python scripts/coarse.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["coarse", *sys.argv[1:]]))
