"""Long-running people jobs with a progress bar and a Stop button: bulk import from a
folder (one sub-folder per person) and recomputing templates after a model change."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceapp.gui.admin import admin_allowed
from faceapp.gui.qt_env import emit
from faceapp.gui.widgets import BAD_COLOUR, TaskThread
from faceapp.service import enroll, templates
from faceapp.service.app import App
from faceapp.service.enroll import Checked, ImportReport


class _TaskDialog(QDialog):
    """A dialog that runs one TaskThread, with a progress bar, Start, Stop and Close."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: TaskThread | None = None
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.current = QLabel()
        self.current.setObjectName("taskCurrent")
        self.current.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("&Start")
        self.stop_button = QPushButton("S&top")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)

    def _add_progress(self, layout: QVBoxLayout) -> None:
        """Put the progress bar with Start and Stop, and the current item below them, into ``layout``."""
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.start_button)
        bar.addWidget(self.stop_button)
        layout.addLayout(bar)
        layout.addWidget(self.current)

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.isRunning()

    def _run(self, fn, on_published=None) -> None:
        self.task = TaskThread(fn)
        if on_published is not None:
            self.task.published.connect(on_published)
        self.task.progressed.connect(self._on_progress)
        self.task.succeeded.connect(self._on_success)
        self.task.failed.connect(self._on_failure)
        self.task.finished.connect(self._on_finished)
        self.destroyed.connect(self.task.stop)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.task.start()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        if self.task is not None:
            self.task.stop()
            self.stop_button.setEnabled(False)
            self.current.setText("Stopping after the current item…")

    def _on_progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.current.setText(Path(what).name if what else "")

    def _on_success(self, result: object) -> None:  # pragma: no cover - overridden
        pass

    def _on_failure(self, message: str) -> None:
        self.current.setText(message)
        self.current.setStyleSheet(f"color: {BAD_COLOUR.name()};")

    def _on_finished(self) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def done(self, result: int) -> None:
        # Closing while running stops the job first: each person / batch is its own
        # transaction, so what was finished stays and nothing is half-written.
        if self.task is not None and self.task.isRunning():
            self.task.finish(30000)
        super().done(result)


class ImportDialog(_TaskDialog):
    """Enroll everyone in a folder with one sub-folder per person, with a live report of rejections."""

    imported = Signal(object)  # ImportReport

    def __init__(self, app: App, parent: QWidget | None = None, folder: str | Path | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.report: ImportReport | None = None
        self.setWindowTitle("Import people from a folder")
        self.resize(760, 520)
        layout = QVBoxLayout(self)
        intro = QLabel("Choose a folder with one sub-folder per person, named after them "
                       "(e.g. <i>Ada_Lovelace/id_photo.jpg</i>). People already enrolled get the new photos added.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit(str(folder) if folder else "")
        self.folder_edit.setPlaceholderText("folder to import")
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self.browse)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        self._add_progress(layout)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Photo or folder", "Why it was not used"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 300)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        layout.addWidget(self.table, 1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with one sub-folder per person",
                                                  self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def start(self) -> None:
        if self.running or not admin_allowed(self, "import people from a folder"):
            return
        folder = self.folder_edit.text().strip()
        if not folder:
            self.browse()
            folder = self.folder_edit.text().strip()
            if not folder:
                return
        self.table.setRowCount(0)
        self.summary.clear()
        self.current.setStyleSheet("")
        self.report = None
        app = self.app

        def job(task: TaskThread) -> ImportReport:
            def on_photo(checked: Checked) -> None:
                if not checked.ok:
                    task.publish(checked)
            return enroll.import_folder(app, folder, progress=task.progress, should_stop=task.stopped,
                                        on_photo=on_photo)

        self._run(job, self._on_rejected)

    def _add_row(self, what: str, why: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(what)
        item.setToolTip(what)
        self.table.setItem(row, 0, item)
        reason = QTableWidgetItem(why)
        reason.setToolTip(why)
        self.table.setItem(row, 1, reason)

    def _on_rejected(self, checked: Checked) -> None:
        self._add_row(_short_path(checked.source), checked.verdict)

    def _on_success(self, report: object) -> None:
        assert isinstance(report, ImportReport)
        self.report = report
        for folder, why in report.skipped_people:
            self._add_row(_short_path(folder) + "/", why)
        stopped = self.task is not None and self.task.stopped()
        text = (("Stopped. " if stopped else "Done. ")
                + f"{_count(len(report.people_created), 'person', 'people')} enrolled, "
                f"{_count(len(report.people_extended), 'person', 'people')} given more photos; "
                f"{_count(report.accepted, 'photo')} accepted, {len(report.rejected)} rejected")
        if report.already_stored:
            text += f", {len(report.already_stored)} already stored (skipped)"
        if report.skipped_people:
            text += f"; {_count(len(report.skipped_people), 'folder')} skipped"
        self.summary.setText(text + ".")
        self.current.clear()
        emit(self.imported, report)


class RecomputeDialog(_TaskDialog):
    """Compute templates of the active model from every stored face crop that lacks one."""

    recomputed = Signal(int)

    def __init__(self, app: App, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.added: int | None = None
        self.setWindowTitle("Recompute templates")
        self.resize(520, 200)
        layout = QVBoxLayout(self)
        self.info = QLabel()
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self._add_progress(layout)
        layout.addWidget(self.buttons)
        self._show_status()

    def _show_status(self) -> None:
        st = templates.template_status(self.app)
        if st.complete:
            self.info.setText(f"All {st.photos} stored photos have templates for the model "
                              f"<b>{st.model_id}</b>. Nothing to do.")
        else:
            self.info.setText(f"{st.missing} of {st.photos} stored photos have no template for the model "
                              f"<b>{st.model_id}</b>: those people are not recognised until they are "
                              f"computed from the stored face crops.")
        self.start_button.setEnabled(not st.complete and not self.running)

    def start(self) -> None:
        if self.running or not admin_allowed(self, "recompute templates"):
            return
        app = self.app
        self.current.setStyleSheet("")
        self._run(lambda task: templates.recompute_templates(app, task.progress, task.stopped))

    def _on_progress(self, done: int, total: int, what: str) -> None:
        super()._on_progress(done, total, "")
        self.current.setText(f"{done} / {total}")

    def _on_success(self, added: object) -> None:
        self.added = int(added)  # type: ignore[arg-type]
        self.current.setText(f"{self.added} template(s) computed.")
        emit(self.recomputed, self.added)

    def _on_finished(self) -> None:
        super()._on_finished()
        self._show_status()


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _short_path(path: str) -> str:
    p = Path(path)
    return str(Path(p.parent.name) / p.name) if p.parent.name else p.name
