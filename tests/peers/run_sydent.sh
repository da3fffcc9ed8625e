#!/usr/bin/env bash
# Runs run_sydent.py with the peers' venv (made by setup.sh); exec keeps the PID, so
# the caller's SIGTERM reaches the server itself. Arguments: see run_sydent.py --help.
exec "${VESTIBULE_PEERS_VENV:-$HOME/.cache/vestibule-peers-venv}/bin/python" \
    "$(dirname "${BASH_SOURCE[0]}")/run_sydent.py" "$@"
