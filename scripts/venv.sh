#!/usr/bin/env bash
# A private Python environment with packages from PyPI, for the helpers the tests and
# benchmarks run (moto, pika): Debian's own Python refuses `pip install` outside one (PEP 668).
#
#   scripts/venv.sh DIR CHECK PACKAGE...   -> prints DIR/bin/python
#
# DIR is made with `python3 -m venv` (as root, Debian's python3-venv is installed first when the
# module is missing); the packages are installed unless the Python statement CHECK (for example
# `import moto`) already runs there. Progress goes to stderr; stdout is the interpreter's path.
set -euo pipefail

(( $# >= 3 )) || { echo "usage: $0 DIR CHECK PACKAGE..." >&2; exit 2; }
dir=$1 check=$2
shift 2
if [[ -x $dir/bin/python ]] && "$dir/bin/python" -c "$check" 2>/dev/null; then
    echo "$dir/bin/python"
    exit 0
fi
if [[ ! -x $dir/bin/python ]]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null && (( EUID == 0 )); then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends python3-venv >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3-venv >/dev/null; }
    fi
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    python3 -m venv "$dir" >&2
fi
echo "venv.sh: installing $* into $dir" >&2
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
"$dir/bin/python" -c "$check" >&2
echo "$dir/bin/python"
