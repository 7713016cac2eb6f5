#!/usr/bin/env bash
# Installs msmkit and runs the main job on the embedded default (no API key, no GPU, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/msm quickstart "$@"
