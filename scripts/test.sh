#!/usr/bin/env bash
# Installs what the tests need (venv, msmkit[test], headless Chromium for the report tests), builds the
# documentation strictly (any warning fails, including a config field or command the reference misses), and
# runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the report rendering tests will be skipped"
  else
    echo "note: chromium not found and not root; the report rendering tests will be skipped"
  fi
fi
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
# NO_MKDOCS_2_WARNING: Material's banner about its own end of life, printed on every build.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
.venv/bin/python -m pytest -q "$@"
