#!/usr/bin/env bash
# bench/device_check.sh [ARGS]: bench/device_check.py (see its docstring) with the interpreter that
# holds PyTorch ($PYTHON, default python3), from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 2
exec "${PYTHON:-python3}" bench/device_check.py "$@"
