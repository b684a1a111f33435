"""Twin of `ide metrics`: same arguments (python scripts/metrics.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["metrics", *sys.argv[1:]]))
