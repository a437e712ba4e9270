#!/usr/bin/env bash
# Install the official BIDS validators into .tools/ (project-local, idempotent).
#
#   .tools/node_modules/.bin/bids-validator   bids-validator 1.15.0 from the npm registry
#                                             (the legacy Node.js validator; needs node >= 18)
#   .tools/pypi/bin/bids-validator-deno       bids-validator-deno 3.0.2 from PyPI: the
#                                             schema-based validator (current BIDS schema),
#                                             with the Deno runtime it runs on (a binary
#                                             shipped inside the 'deno' wheel); run it with
#                                             PYTHONPATH=.tools/pypi
#
# Both run offline once installed. tests/test_study_bids_export.py validates an export with
# each one found (and fails instead of skipping when IMMUNOPET_REQUIRE_TOOLS=1).
# Usage: scripts/install_bids_validator.sh [PYTHON]   (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_VERSION=1.15.0
DENO_VERSION=3.0.2
TOOLS=.tools
PYTHON=${1:-}
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$TOOLS"

installed_npm_version() {
  node -e "console.log(require('./$TOOLS/node_modules/bids-validator/package.json').version)" \
    2>/dev/null || true
}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "install_bids_validator: node/npm not found; skipping bids-validator $NPM_VERSION" >&2
elif [ "$(installed_npm_version)" = "$NPM_VERSION" ] \
  && [ -x "$TOOLS/node_modules/.bin/bids-validator" ]; then
  echo "bids-validator $NPM_VERSION already in $TOOLS/"
else
  echo "installing bids-validator $NPM_VERSION (npm) into $TOOLS/"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
    "bids-validator@$NPM_VERSION" >/dev/null
fi

if PYTHONPATH="$TOOLS/pypi" "$PYTHON" -c "
import importlib.metadata as m, sys
sys.exit(m.version('bids-validator-deno') != '$DENO_VERSION')" 2>/dev/null; then
  echo "bids-validator-deno $DENO_VERSION already in $TOOLS/pypi/"
else
  echo "installing bids-validator-deno $DENO_VERSION (PyPI) into $TOOLS/pypi/"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade \
    --target "$TOOLS/pypi" "bids-validator-deno==$DENO_VERSION"
fi
