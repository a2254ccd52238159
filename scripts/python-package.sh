#!/usr/bin/env bash
# Builds the Python package from the jsii assembly, offline: jsii-pacmak writes the Python source
# package (--code-only: its own build would create a virtualenv and fetch setuptools and build
# from PyPI), then Debian's pip, setuptools and wheel build the wheel without build isolation.
# Output: dist/python/cdk_model_serving-<version>-py3-none-any.whl
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
py="${PYTHON_BUILD_PYTHON:-/usr/bin/python3}"
for module in pip setuptools wheel; do
  "$py" -c "import $module" 2>/dev/null || {
    echo "python-package: $py has no $module: apt-get install -y python3-pip python3-setuptools python3-wheel (.ci/run installs them)" >&2
    exit 1
  }
done
[[ -f .jsii ]] || { echo "python-package: no .jsii assembly: run 'npm run jsii' first" >&2; exit 1; }
rm -rf dist/python-src dist/python
npx jsii-pacmak --target python --code-only --outdir dist/python-src
"$py" -m pip wheel --quiet --no-build-isolation --no-deps --no-index --wheel-dir dist/python dist/python-src/python
ls dist/python/*.whl
