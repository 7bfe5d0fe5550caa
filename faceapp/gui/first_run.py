"""First start without models: a dialog that explains the model packs and their licences and
installs one from a local folder or .zip, or from the official source (no terminal needed).

Also reachable later from Models ▸ Install models… . Every file is checked against the
catalogue's sha256 before it is placed (see :mod:`faceapp.engine.installer`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import ModelError
from faceapp.engine.catalog import CATALOG, find_pack
from faceapp.engine.installer import InstallReport, install_pack, list_packs
from faceapp.gui.widgets import BAD_COLOUR, OK_COLOUR, TaskThread
from faceapp.service.app import App

log = logging.getLogger(__name__)

_INTRO = (
    "<b>faceapp needs a model pack before it can recognise anyone.</b><br>"
    "A pack is a face detector and a face recogniser. Model weights are not part of the "
    "application: each pack has its own licence, so please choose one that fits how you use "
    "faceapp. The insightface packs (buffalo_…) may be used for <b>non-commercial research "
    "only</b>; the OpenCV pack (YuNet + SFace, MIT / Apache-2.0) may be used commercially."
)


def models_missing(app: App) -> bool:
    """True when no recognition pack is installed in the data folder (the first start)."""
    # A liveness pack alone cannot recognise anyone.
    return not any(st.installed for st in list_packs(app.paths.models) if st.name in CATALOG)


class _Cancelled(ModelError):
    pass


class ModelSetupDialog(QDialog):
    """Choose a pack (licence shown), then install it from a folder, a .zip or the internet."""

    installed = Signal(object)  # InstallReport

    def __init__(self, app: App, parent: QWidget | None = None, first_run: bool = True) -> None:
        super().__init__(parent)
        self.app = app
        self.task: TaskThread | None = None
        self._busy = False
        self.report: InstallReport | None = None
        self.setWindowTitle("Install face models" if not first_run else "Welcome to faceapp")
        self.setMinimumWidth(760)

        intro = QLabel(_INTRO)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Pack", "Size", "Licence", "Use", "Installed"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setObjectName("packDescription")

        self.folder_button = QPushButton("From a &folder…")
        self.folder_button.setToolTip("A folder holding the model files (e.g. a USB stick or a network share)")
        self.zip_button = QPushButton("From a &zip file…")
        self.zip_button.setToolTip("The official .zip of the pack, or any .zip holding its files")
        self.download_button = QPushButton("&Download (needs internet)")
        self.folder_button.clicked.connect(self._choose_folder)
        self.zip_button.clicked.connect(self._choose_zip)
        self.download_button.clicked.connect(lambda: self.install(None))
        sources = QHBoxLayout()
        sources.addWidget(QLabel("Install the selected pack:"))
        sources.addWidget(self.folder_button)
        sources.addWidget(self.zip_button)
        sources.addWidget(self.download_button)
        sources.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("&Later" if first_run else "&Close")
        self.close_button.setToolTip("Open faceapp without models (recognition stays off)")
        self.close_button.clicked.connect(self.reject)
        self.start_button = QPushButton("&Start faceapp" if first_run else "&Done")
        self.start_button.setDefault(True)
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.accept)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.close_button)
        bottom.addWidget(self.start_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.description)
        layout.addLayout(sources)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addLayout(bottom)
        self._fill()

    # -- the table ----------------------------------------------------------------
    def _fill(self) -> None:
        rows = list_packs(self.app.paths.models)  # recognition packs, then the optional liveness pack
        self.table.setRowCount(len(rows))
        preferred = self.app.settings.pack
        select = 0
        for r, st in enumerate(rows):
            use = "commercial use allowed" if st.commercial_use else "non-commercial research only"
            if st.name not in CATALOG:
                use += " (optional liveness check)"
            state = "yes" if st.ok else ("damaged" if st.installed else "")
            for c, text in enumerate((st.name, f"{st.size / 1e6:.0f} MB", st.licence, use, state)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, st.name)
                if c == 3:
                    item.setForeground(OK_COLOUR if st.commercial_use else BAD_COLOUR)
                self.table.setItem(r, c, item)
            if st.name == preferred:
                select = r
        if rows:
            self.table.selectRow(select)

    def selected_pack(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_pack(self, name: str) -> None:
        """Select ``name`` in the table (ModelError if it is not a recognition pack)."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(r)
                return
        raise ModelError(f"unknown model pack {name!r}")

    def _on_selection(self) -> None:
        name = self.selected_pack()
        if name is None:
            self.description.clear()
            return
        pack = find_pack(name)
        self.download_button.setEnabled(not self.running and all(f.url for f in pack.files))
        self.download_button.setToolTip("" if all(f.url for f in pack.files) else
                                        "This pack has no official download: install it from a folder or zip")
        self.description.setText(f"<b>{name}</b>: {pack.description}<br><small>Licence: {pack.licence}. "
                                 f"Official source: {pack.source}</small>")

    # -- installing ---------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with the model files")
        if folder:
            self.install(folder)

    def _choose_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Zip file with the model files", "",
                                              "Zip files (*.zip);;All files (*)")
        if path:
            self.install(path)

    @property
    def running(self) -> bool:
        """True from :meth:`install` until its result has been shown."""
        return self._busy

    def install(self, source: str | Path | None) -> None:
        """Install the selected pack from ``source`` (folder or .zip; None = official source)
        in the background; ``installed`` is emitted when every file is in place and verified."""
        name = self.selected_pack()
        if name is None or self.running:
            return
        models = self.app.paths.models
        where = "the official source" if source is None else str(source)

        def work(task: TaskThread) -> InstallReport:
            def progress(label: str, done: int, total: int) -> None:
                if task.stopped():
                    raise _Cancelled("installation cancelled; nothing was installed")
                task.progress(done, total, label)

            return install_pack(name, models, source=source, progress=progress)

        self.task = TaskThread(work)
        self.task.progressed.connect(self._on_progress)
        self.task.succeeded.connect(self._on_success)
        self.task.failed.connect(self._on_failure)
        self.task.finished.connect(self._on_finished)
        self._busy = True
        self._set_status(f"Installing '{name}' from {where}…")
        self.progress.setRange(0, 0)
        self.task.start()
        self._sync_buttons()

    def _on_finished(self) -> None:
        # Queued after succeeded/failed: the outcome is on screen by now.
        self._busy = False
        self._sync_buttons()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.stop()
            self._set_status("Cancelling…")

    def _on_progress(self, done: int, total: int, label: str) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, done * 1000 // total))
        else:
            self.progress.setRange(0, 0)  # size unknown: a busy bar
        self.progress.setFormat(f"{label}: {done / 1e6:.1f} MB")

    def _on_success(self, report: InstallReport) -> None:
        self.report = report
        if report.pack in CATALOG and self.app.settings.pack != report.pack:
            self.app.update_settings(pack=report.pack)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("%p%")
        checks = "sha256 checked" if all(f.check == "sha256" for f in report.files) else "size checked"
        use = "faceapp will use it" if report.pack in CATALOG else "doors set to require liveness will use it"
        self._set_status(f"Installed '{report.pack}' ({checks}); {use}.", ok=True)
        self._fill()
        self.start_button.setEnabled(not models_missing(self.app))
        self.installed.emit(report)

    def _on_failure(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self._set_status(message, ok=False)

    def _set_status(self, text: str, ok: bool | None = None) -> None:
        self.status.setText(text)
        colour = {True: OK_COLOUR.name(), False: BAD_COLOUR.name()}.get(ok)  # type: ignore[arg-type]
        self.status.setStyleSheet(f"color: {colour};" if colour else "")

    def _sync_buttons(self) -> None:
        busy = self.running
        for b in (self.folder_button, self.zip_button, self.table):
            b.setEnabled(not busy)
        self._on_selection()  # the download button: only for packs with an official source
        self.cancel_button.setEnabled(busy)
        self.start_button.setEnabled(not busy and self.report is not None and not models_missing(self.app))

    def done(self, result: int) -> None:
        # Closing while installing cancels: the installer removes its temporary files.
        if self.task is not None and self.task.isRunning():
            self.task.finish(60000)
        super().done(result)


def run_first_start(app: App, parent: QWidget | None = None) -> bool:
    """Show the dialog if no pack is installed; True if a pack was installed by it."""
    if not models_missing(app):
        return False
    dialog = ModelSetupDialog(app, parent, first_run=True)
    dialog.exec()
    return dialog.report is not None


def install_models_action(window, app: App) -> None:
    """Models ▸ Install models… (administrator): the same dialog at any time."""
    action = window.models_menu.addAction("&Install models…")

    def open_dialog() -> None:
        if not window.admin_allowed("install models"):
            return
        dialog = ModelSetupDialog(app, window, first_run=False)
        dialog.installed.connect(lambda _report: window.retry_models())
        dialog.exec()

    action.triggered.connect(open_dialog)
    window.add_admin_action(action)
    window.install_models_action = action
