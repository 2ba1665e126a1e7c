#!/usr/bin/env bash
# The test suite as CI runs it: the fast tier, then the slow tier (ruff runs inside the fast tier,
# tests/test_style.py).
#
# The report's browser test needs headless Chromium (Debian package `chromium`); it is
# installed here when missing and this script runs as root on a system with apt-get.
# Environment: PYTHON (interpreter with biobench installed, default `python`).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
"$python" -m pytest -q
"$python" -m pytest -q -m slow
