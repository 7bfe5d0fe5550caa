#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: system libraries for Qt, a virtualenv in .venv,
# faceapp installed into it, and (for the app) the default model pack.
# Safe to run again: each step is skipped when already done.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACEAPP_VENV:-$REPO/.venv}"
PY="${PYTHON:-python3}"

log() { printf 'faceapp setup: %s\n' "$*" >&2; }

# Qt (PySide6) needs these even offscreen; the xcb ones are for a real window.
QT_LIBS=(libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
         libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0
         libxcb-shape0 libxcb-xkb1 libxcb-xinerama0 libxcb-xfixes0 fonts-dejavu-core)

install_system_libs() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing=()
    for p in "${QT_LIBS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        log "installing system libraries for Qt: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        log "missing system libraries for Qt: ${missing[*]}"
        log "install them with: sudo apt-get install ${missing[*]}"
        return 1
    fi
}

# The site tests start their own throw-away PostgreSQL 15 cluster (tests/pg_cluster.py); the
# app itself only needs a client library (psycopg's binary wheel bundles libpq).
install_postgresql() {
    [ -x /usr/lib/postgresql/15/bin/initdb ] && return 0
    command -v apt-get >/dev/null 2>&1 || { log "PostgreSQL 15 server binaries missing (site tests need them)"; return 1; }
    if [ "$(id -u)" -eq 0 ]; then
        log "installing PostgreSQL 15 for the site tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
    else
        log "the site tests need PostgreSQL 15: sudo apt-get install postgresql-15"
        return 1
    fi
}

make_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            log "Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))"; exit 1; }
        log "creating virtualenv $VENV"
        "$PY" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    # Reinstall only when pyproject.toml or the extras changed.
    local stamp="$VENV/.faceapp-installed"
    local want
    want="$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing faceapp${extras:+[$extras]} and its dependencies (first time: a minute or two)"
        "$VENV/bin/python" -m pip install -q -e "$REPO${extras:+[$extras]}"
        echo "$want" > "$stamp"
    fi
}

# Installs the default model pack into the data folder unless it is there already.
# Local copies are preferred (FACEAPP_MODELS_FROM, or ../shared/models beside the repo);
# otherwise the official source is downloaded - that only happens here, when set-up is run.
install_models() {
    local faceapp="$VENV/bin/faceapp"
    local src="${FACEAPP_MODELS_FROM:-}"
    if [ -z "$src" ] && [ -d "$REPO/../shared/models" ]; then
        src="$REPO/../shared/models"
    fi
    # The optional liveness pack (doors set to passive/challenge): only from a local source, it has
    # no download; without it everything else works.
    if [ -n "$src" ] && ! "$faceapp" models verify --pack minifasnet >/dev/null 2>&1; then
        "$faceapp" models install --pack minifasnet --from "$src" >/dev/null 2>&1 \
            || log "liveness pack minifasnet not found in $src: doors cannot require liveness"
    fi
    if "$faceapp" models verify --pack buffalo_sc >/dev/null 2>&1; then
        return 0
    fi
    if [ -n "$src" ]; then
        "$faceapp" models install --pack buffalo_sc --from "$src"
    else
        log "downloading the default model pack (set FACEAPP_MODELS_FROM=DIR_OR_ZIP to install offline)"
        "$faceapp" models install --pack buffalo_sc
    fi
}
