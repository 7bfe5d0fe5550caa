"""Help ▸ About: version, the model pack in use and its licence, the data folder, a README link.
``AboutDialog.add_section`` lets other parts add text (e.g. third-party notices)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QMainWindow, QVBoxLayout, QWidget

from faceapp import __version__
from faceapp.core.errors import FaceAppError
from faceapp.engine.catalog import get_pack
from faceapp.service.app import App

def readme_link() -> str:
    """A link to the README beside the package (a checkout or an installer folder), or its name."""
    local = Path(__file__).resolve().parents[2] / "README.md"
    if local.is_file():
        return f'<a href="{escape(QUrl.fromLocalFile(str(local)).toString())}">{escape(str(local))}</a>'
    return "README.md in the faceapp folder"


def about_html(app: App) -> str:
    """The About text (rich text): version, model pack and licence, data folder, README."""
    name = app.settings.pack
    try:
        pack = get_pack(name)
        licence = f"{escape(pack.licence)}{'' if pack.commercial_use else ' (non-commercial use only)'}"
        model = f"{escape(pack.name)}: {escape(pack.description)}"
    except FaceAppError:
        licence, model = "unknown", escape(name)
    rows = (
        ("Version", escape(__version__)),
        ("Model pack", model),
        ("Model licence", licence),
        ("Data folder", escape(str(app.paths.home))),
        ("Documentation", readme_link()),
    )
    body = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return (f"<h3>faceapp {escape(__version__)}</h3><p>Face-recognition attendance and access control. "
            f"Everything runs on this computer.</p><table>{body}</table>")


class AboutDialog(QDialog):
    """The About box (modeless content, closed with OK)."""

    def __init__(self, app: App, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About faceapp")
        self._layout = QVBoxLayout(self)
        self.text = QLabel(about_html(app), self)
        self.text.setObjectName("aboutText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setOpenExternalLinks(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self._layout.addWidget(self.text)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, self)
        self.buttons.accepted.connect(self.accept)
        self._layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def add_section(self, widget: QWidget) -> None:
        """Add a widget (e.g. third-party notices) above the OK button."""
        self._layout.insertWidget(self._layout.count() - 1, widget)


def install_help_menu(window: QMainWindow, app: App):
    """Help ▸ About faceapp… on ``window``; returns the Help menu (others add entries to it)."""
    menu = window.menuBar().addMenu("&Help")
    action = menu.addAction("&About faceapp…")
    action.triggered.connect(lambda *_: window.show_about())
    return menu
