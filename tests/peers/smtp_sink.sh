#!/usr/bin/env bash
# Runs smtp_sink.py with the peers' venv (made by setup.sh); exec keeps the PID, so
# the caller's SIGTERM reaches the server itself. Arguments: see smtp_sink.py --help.
exec "${VESTIBULE_PEERS_VENV:-$HOME/.cache/vestibule-peers-venv}/bin/python" \
    "$(dirname "${BASH_SOURCE[0]}")/smtp_sink.py" "$@"
