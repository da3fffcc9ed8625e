#!/usr/bin/env bash
# Make the Python venv the test peers run from (smtp_sink.py, run_sydent.py).
# Idempotent: a second run with the same requirements.txt does nothing.
#
#   VESTIBULE_PEERS_VENV    venv location (default ~/.cache/vestibule-peers-venv)
#   VESTIBULE_PEERS_PYTHON  interpreter to build it from (default: python3.11,
#                           else python3; must be >= 3.11)
#
# Needs network access to PyPI (and Debian's archive only if the interpreter
# lacks the venv module, when python3-venv is installed with apt-get).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VESTIBULE_PEERS_VENV:-$HOME/.cache/vestibule-peers-venv}"
req="$here/requirements.txt"
stamp="$venv/.vestibule-peers-requirements"

up_to_date() {
    [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' 2>/dev/null \
        && [[ -f "$stamp" ]] && cmp -s "$req" "$stamp"
}
up_to_date && exit 0

# Tests may run this concurrently: one builds, the others wait and reuse.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
up_to_date && exit 0

python="${VESTIBULE_PEERS_PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]]; then
    echo "setup.sh: no python3 found (set VESTIBULE_PEERS_PYTHON)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup.sh: $python is $("$python" -V 2>&1); the pinned peers need Python >= 3.11" >&2
    exit 1
fi

# Debian's own python3 ships venv/ensurepip in a separate package.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        pkgs=()
        for p in python3-venv "python${pyver}-venv"; do
            dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
        done
        if ((${#pkgs[@]})); then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            apt-get install -y -qq "${pkgs[@]}" >/dev/null
        fi
    fi
    "$python" -c 'import ensurepip, venv' || {
        echo "setup.sh: $python has no working venv module" >&2
        exit 1
    }
fi

if [[ -e "$venv" ]]; then
    if [[ ! -f "$venv/pyvenv.cfg" ]]; then
        echo "setup.sh: $venv exists and is not a venv; not touching it" >&2
        exit 1
    fi
    rm -rf "$venv"
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
"$venv/bin/python" -c 'import aiosmtpd.smtp, sydent.sydent'
cp "$req" "$stamp"
