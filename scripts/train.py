"""Twin of `ide train`: same arguments (python scripts/train.py --help)."""

import sys

from ide.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
