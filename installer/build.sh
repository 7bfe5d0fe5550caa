#!/usr/bin/env bash
# Builds the desktop application from a checkout, no Python needed on the target machine:
#   bash installer/build.sh
# -> dist/faceapp/            one-folder application (run dist/faceapp/faceapp)
# -> dist/faceapp_VERSION_ARCH.deb   (when dpkg-deb exists) installs to /opt/faceapp, launcher /usr/bin/faceapp
#
# FACEAPP_BUILD_VENV=DIR  build from this virtualenv (must have faceapp's dependencies; PyInstaller is
#                         added if missing). Default: .build-venv, created and filled from PyPI.
# FACEAPP_BUILD_DIR=DIR   PyInstaller's work folder (default build/pyinstaller); reused, so a second
#                         build only redoes what changed.
# FACEAPP_DIST_DIR=DIR    output folder (default dist)
# FACEAPP_DEB_VERSION=V   version written into the .deb (default: faceapp's own version)
# FACEAPP_DEB_COMPRESSION=gzip|xz|zstd   (default gzip)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
export FACEAPP_VENV="${FACEAPP_BUILD_VENV:-$REPO/.build-venv}"
source "$HERE/setup.sh"

install_system_libs
if [ -z "${FACEAPP_BUILD_VENV:-}" ]; then
    make_venv "build"
elif ! "$VENV/bin/python" -c "import PyInstaller" 2>/dev/null; then
    log "adding PyInstaller to $VENV"
    "$VENV/bin/python" -m pip install -q "pyinstaller>=6.10"
fi
PY_BIN="$VENV/bin/python"
DIST="${FACEAPP_DIST_DIR:-$REPO/dist}"
WORK="${FACEAPP_BUILD_DIR:-$REPO/build/pyinstaller}"
VERSION="$(cd "$REPO" && PYTHONPATH="$REPO" "$PY_BIN" -c 'import faceapp; print(faceapp.__version__)')"

log "building faceapp $VERSION with PyInstaller (a few minutes)"
start=$SECONDS
(cd "$REPO" && PYTHONPATH="$REPO" "$PY_BIN" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$HERE/faceapp.spec")
APP="$DIST/faceapp"
log "built $APP in $((SECONDS - start)) s, $(du -sm "$APP" | cut -f1) MB"
"$APP/faceapp" --version

command -v dpkg-deb >/dev/null 2>&1 || { log "dpkg-deb not found: no .deb made"; exit 0; }
DEB_VERSION="${FACEAPP_DEB_VERSION:-$VERSION}"
ARCH="$(dpkg --print-architecture)"
PKG="$WORK/deb/faceapp"
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
         "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/icons/hicolor/256x256/apps" \
         "$PKG/usr/share/doc/faceapp"
cp -a "$APP" "$PKG/opt/faceapp"
# Relative, so that it also resolves in a `dpkg --root` install.
ln -s ../../opt/faceapp/faceapp "$PKG/usr/bin/faceapp"
cp "$REPO/resources/faceapp.desktop" "$PKG/usr/share/applications/faceapp.desktop"
cp "$REPO/resources/faceapp.svg" "$PKG/usr/share/icons/hicolor/scalable/apps/faceapp.svg"
cp "$REPO/resources/faceapp.png" "$PKG/usr/share/icons/hicolor/256x256/apps/faceapp.png"
cp "$REPO/LICENSE" "$PKG/usr/share/doc/faceapp/copyright"
cp "$APP/THIRD-PARTY-NOTICES.txt" "$PKG/usr/share/doc/faceapp/THIRD-PARTY-NOTICES.txt"
# The Qt libraries PySide6's wheel expects from the system (as installer/setup.sh installs them).
DEPENDS="$(printf '%s, ' "${QT_LIBS[@]}")"
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: faceapp
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: faceapp contributors <faceapp@localhost>
Section: video
Priority: optional
Installed-Size: $(du -sk "$PKG" | cut -f1)
Depends: ${DEPENDS%, }
Description: face-recognition attendance and access control
 Enrolls employees, recognises them on a live camera and logs entries per door,
 all on the local CPU. The application lives in /opt/faceapp; each user's data
 folder (~/.local/share/faceapp) is never touched by installing, upgrading or
 removing this package. Model weights are installed on first start.
CONTROL
# No maintainer scripts: nothing to do on install, and removal must not touch users' data.
DEB="$DIST/faceapp_${DEB_VERSION}_${ARCH}.deb"
# gzip: every dpkg reads it, and it packs ~600 MB in minutes where xz takes much longer.
dpkg-deb --root-owner-group "-Z${FACEAPP_DEB_COMPRESSION:-gzip}" --build "$PKG" "$DEB" >/dev/null
log "package $DEB ($(du -m "$DEB" | cut -f1) MB)"
