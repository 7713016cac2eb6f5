#!/usr/bin/env bash
# Creates .venv and installs msmkit with everything it needs (CPU build of PyTorch).
# Usage: scripts/install.sh [extra]   e.g. scripts/install.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 is the CPU build; on a GPU machine install the CUDA build of your choice first.
if [ -n "$extra" ]; then
  .venv/bin/pip install -q torch==2.13.0 -e ".[$extra]"
else
  .venv/bin/pip install -q torch==2.13.0 -e .
fi
