"""Twin of `ide test`: same arguments (python scripts/test.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
