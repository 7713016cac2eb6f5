#!/usr/bin/env bash
# Creates .venv and installs msmkit with everything it needs (CPU build of PyTorch).
# Usage: scripts/install.sh [extra]   e.g. scripts/install.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

# Quiet, not blind: pip's errors and all other warnings still show. Dropped are only (1) pip's
# "Location 'file:///...' is ignored" lines, printed for every package a machine-wide extra index folder
# does not carry (the index config belongs to the machine, not to this project), and (2) setuptools'
# information-only notice about editable installs, which it prints on every `pip install -e`.
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation"
pip_install() {
  .venv/bin/pip install -q "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" >&2)
}

python3 -m venv .venv
pip_install --upgrade pip
# torch==2.13.0 is the CPU build; on a GPU machine install the CUDA build of your choice first.
if [ -n "$extra" ]; then
  pip_install torch==2.13.0 -e ".[$extra]"
else
  pip_install torch==2.13.0 -e .
fi
