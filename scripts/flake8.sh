#!/usr/bin/env bash
# Runs Debian's flake8 (the Python the server tests use) over the repository's Python (.flake8).
set -euo pipefail
py="${MODEL_SERVER_PYTHON:-/usr/bin/python3}"
if ! "$py" -m flake8 --version >/dev/null 2>&1; then
  echo "flake8 is missing for $py: apt-get install -y python3-flake8 (.ci/run installs it)" >&2
  exit 1
fi
exec "$py" -m flake8 "$@"
