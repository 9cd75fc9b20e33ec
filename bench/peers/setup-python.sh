#!/usr/bin/env bash
# Creates peers/.venv with the pinned python-socketio stack used as the comparison peer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    python-socketio==5.18.1 \
    python-engineio==4.15.1 \
    uvicorn==0.54.0 \
    websockets==15.0.1 \
    uvloop==0.23.0 \
    httptools==0.9.0
"$venv/bin/python" -c 'import socketio, engineio, uvicorn; print("python-socketio", socketio.__version__ if hasattr(socketio, "__version__") else "?", "uvicorn", uvicorn.__version__)'
