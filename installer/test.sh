#!/usr/bin/env bash
# One command from a fresh checkout to the whole test suite:  bash installer/test.sh [pytest args]
# Needs the test data folder ../shared (models/ and faces/) beside the repo, or FACEAPP_SHARED.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
install_system_libs
install_postgresql
make_venv "test"
cd "$REPO"
export QT_QPA_PLATFORM=offscreen
"$VENV/bin/lint-imports"
exec "$VENV/bin/python" -m pytest "$@"
