#!/usr/bin/env bash
# A private Python environment with packages from PyPI, for the helpers the tests and
# benchmarks run (moto, pika): Debian's own Python refuses `pip install` outside one (PEP 668).
#
#   scripts/venv.sh DIR CHECK PACKAGE...   -> prints DIR/bin/python
#
# The packages are installed unless the Python statement CHECK (for example `import moto`)
# already runs in DIR. DIR is made with `python3 -m venv` (as root, Debian's python3-venv is
# installed first when the module is missing), and made again when its Python cannot run pip
# (an interrupted set-up, a Python upgraded under it). A DIR that exists and is not a venv is
# refused, never removed. Progress goes to stderr; stdout is the interpreter's path.
set -euo pipefail

(( $# >= 3 )) || { echo "usage: $0 DIR CHECK PACKAGE..." >&2; exit 2; }
dir=$1 check=$2
shift 2
if [[ -x $dir/bin/python ]] && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "$dir/bin/python"
    exit 0
fi
if [[ -e $dir ]] && ! [[ -f $dir/pyvenv.cfg ]]; then
    echo "venv.sh: $dir exists and is not a Python venv (no pyvenv.cfg); not touching it" >&2
    exit 1
fi
if [[ -e $dir ]] && ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "venv.sh: $dir cannot run pip; making it again" >&2
    rm -rf "$dir"
fi
if [[ ! -e $dir ]]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null && (( EUID == 0 )); then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends python3-venv >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3-venv >/dev/null; }
    fi
    mkdir -p "$(dirname "$dir")"
    # Made where it will live (a venv's scripts name their directory); removed again when
    # it cannot run pip (python3-venv missing and not root to install it).
    if ! python3 -m venv "$dir" >&2 || ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$dir"
        echo "venv.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
echo "venv.sh: installing $* into $dir" >&2
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
"$dir/bin/python" -c "$check" >/dev/null
echo "$dir/bin/python"
