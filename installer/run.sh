#!/usr/bin/env bash
# One command from a fresh checkout to the running app:  bash installer/run.sh [--camera SOURCE] ...
# Arguments are passed to `faceapp` (e.g. --camera video.mp4, --reception, --home DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
install_system_libs
make_venv ""
# --home given on the command line must also be where the models go.
for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = "--home" ]; then j=$((i + 1)); export FACEAPP_HOME="${!j}"; fi
done
install_models
exec "$VENV/bin/faceapp" "$@"
