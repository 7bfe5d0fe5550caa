"""The licences part of Help ▸ About: faceapp's own licence, the third-party components the
application bundles, and the licences of the model packs (which are not bundled)."""

from __future__ import annotations

import html
import sys
from pathlib import Path

from PySide6.QtWidgets import QTextBrowser, QWidget

from faceapp.core.notices import MODEL_LICENCES, NOTICES
from faceapp.engine.catalog import CATALOG, LIVENESS_CATALOG
from faceapp.gui.qt_env import resources_dir


def licences_folder() -> Path:
    """Where the full licence texts are: ``licenses/`` beside the built application, else the
    source checkout's resources/licenses."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / "licenses"
    return resources_dir() / "licenses"


def notices_html() -> str:
    """The notices as HTML (one list of components, one of model packs)."""
    esc = html.escape
    rows = "".join(
        f"<li><b>{esc(n.name)}</b> — {esc(n.licence)}"
        + (f"<br><small>{esc(n.note)}</small>" if n.note else "")
        + "</li>"
        for n in NOTICES
    )
    packs = "".join(
        f"<li><b>{esc(name)}</b> — {esc(pack.licence)} "
        f"({'commercial use allowed' if pack.commercial_use else 'non-commercial research only'})</li>"
        for name, pack in (*CATALOG.items(), *LIVENESS_CATALOG.items())
    )
    folder = licences_folder()
    return (
        "<p>faceapp is free software under the MIT licence.</p>"
        "<p><b>Bundled third-party components</b></p>"
        f"<ul>{rows}</ul>"
        "<p>Qt is used under the LGPLv3: the application keeps Qt as separate shared libraries "
        "that can be replaced with a modified build of the same version.</p>"
        f"<p><b>Model packs</b> (not bundled)<br><small>{esc(MODEL_LICENCES)}</small></p>"
        f"<ul>{packs}</ul>"
        f"<p>Full licence texts: <a href=\"{folder.as_uri()}\">{esc(str(folder))}</a></p>"
    )


def notices_widget(parent: QWidget | None = None) -> QTextBrowser:
    """A read-only, scrollable view of :func:`notices_html` with clickable links."""
    view = QTextBrowser(parent)
    view.setObjectName("thirdPartyNotices")
    view.setOpenExternalLinks(True)
    view.setHtml(notices_html())
    view.setMinimumSize(560, 320)
    return view


def install_notices(window) -> None:
    """Help ▸ About shows the licences and third-party notices below the About text."""
    window.about_hooks.append(lambda dialog: dialog.add_section(notices_widget(dialog)))
