#!/usr/bin/env bash
# Build the documentation with warnings as errors (no tox needed).
#
#   docs/build.sh [OUTPUT_DIR]      # default: docs/_build/html
#
# Needs the docs extra: pip install -e ".[docs]"  (sphinx, qiskit-sphinx-theme, reno).
# Run from anywhere; reno reads the release notes from this repository's git history.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$here/_build/html}"

cd "$root"
python -c "import sphinx, reno" 2>/dev/null || {
    echo "docs/build.sh: sphinx and reno are needed: pip install -e \".[docs]\"" >&2
    exit 2
}
python -m sphinx -W --keep-going -b html "$here" "$out"
echo "docs built in $out"
