"""Small shared pieces of the people/enrollment GUI: thumbnails, a question box with named
buttons, and a background task thread with progress and a stop flag."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QThread, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QMessageBox, QWidget

from faceapp.core.errors import FaceAppError
from faceapp.gui.qt_env import bgr_to_qimage, emit

log = logging.getLogger(__name__)

OK_COLOUR = QColor("#2e9d4f")
BAD_COLOUR = QColor("#c9372c")


_INSTALL_COMMAND = re.compile(r"faceapp models install(?: --[\w-]+(?: (?!--)[^\s;,)]+)?)*")


def in_window_terms(message: str) -> str:
    """A model error as a window user acts on it: the menu entry instead of the terminal command
    the same error shows on the command line."""
    return _INSTALL_COMMAND.sub("Models ▸ Install models…", message)


def bgr_pixmap(image: np.ndarray, max_side: int | None = None) -> QPixmap:
    """A QPixmap copy of a BGR uint8 image, scaled down smoothly to ``max_side`` if given."""
    pix = QPixmap.fromImage(bgr_to_qimage(image))
    if max_side and max(pix.width(), pix.height()) > max_side:
        pix = pix.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    return pix


def thumbnail_icon(image: np.ndarray, size: int = 96, border: QColor | None = None) -> QIcon:
    """A square icon of the image (letterboxed), with a coloured frame when ``border`` is given."""
    canvas = QPixmap(size, size)
    canvas.fill(Qt.GlobalColor.transparent)
    inner = size - (8 if border is not None else 0)
    pix = bgr_pixmap(image, inner)
    if max(pix.width(), pix.height()) < inner:
        pix = pix.scaled(inner, inner, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    painter = QPainter(canvas)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawPixmap((size - pix.width()) // 2, (size - pix.height()) // 2, pix)
    if border is not None:
        pen = QPen(border)
        pen.setWidth(4)
        painter.setPen(pen)
        painter.drawRect(2, 2, size - 4, size - 4)
    painter.end()
    icon = QIcon()
    icon.addPixmap(canvas)
    return icon


def ask_choice(parent: QWidget | None, title: str, text: str, choices: Sequence[str],
               informative: str = "", default: int | None = None, warning: bool = True) -> int | None:
    """Ask the user to pick one of ``choices`` (button labels); None when the box is closed.

    The last choice is treated as the cancel button (Escape). Tests replace this function."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(text)
    if informative:
        box.setInformativeText(informative)
    buttons = []
    for i, label in enumerate(choices):
        role = (QMessageBox.ButtonRole.RejectRole if i == len(choices) - 1 and len(choices) > 1
                else QMessageBox.ButtonRole.AcceptRole)
        buttons.append(box.addButton(label, role))
    if default is not None and 0 <= default < len(buttons):
        box.setDefaultButton(buttons[default])
    if len(buttons) > 1:
        box.setEscapeButton(buttons[-1])
    box.exec()
    clicked = box.clickedButton()
    return buttons.index(clicked) if clicked in buttons else None


_threads: list[QThread] = []


def keep_alive(thread: QThread) -> QThread:
    """Hold a reference to ``thread`` until it has finished.

    Destroying a running QThread aborts the process; a dialog that owns a worker can be
    garbage-collected (or deleted on close) while the worker is still inside the engine.
    Finished threads are released the next time this is called."""
    _threads[:] = [t for t in _threads if t.isRunning()]
    _threads.append(thread)
    return thread


class TaskThread(QThread):
    """Runs ``fn(task)`` once in its own thread.

    ``fn`` reports with :meth:`progress` and :meth:`publish` and looks at :meth:`stopped`;
    the signals reach the GUI thread queued. A FaceAppError ends in ``failed`` with its
    message; anything else is logged and reported as an unexpected error."""

    progressed = Signal(int, int, str)
    published = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[TaskThread], object], parent=None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._stop = threading.Event()

    def start(self, *args) -> None:
        keep_alive(self)
        super().start(*args)

    def stop(self, *_args) -> None:
        """Ask the task to stop at its next check (callable from any thread)."""
        self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def progress(self, done: int, total: int, what: str = "") -> None:
        emit(self.progressed, int(done), int(total), str(what))

    def publish(self, item: object) -> None:
        emit(self.published, item)

    def run(self) -> None:
        try:
            result = self._fn(self)
        except FaceAppError as exc:
            emit(self.failed, str(exc))
        except Exception as exc:  # a bug must not kill the thread silently
            log.exception("background task failed")
            emit(self.failed, f"unexpected error: {exc}")
        else:
            emit(self.succeeded, result)

    def finish(self, wait_ms: int = 10000) -> bool:
        """Stop and wait for the thread; True if it ended."""
        self.stop()
        return self.wait(wait_ms)  # at once True for a thread never started or already done


Index = QModelIndex | QPersistentModelIndex


class RecordTableModel(QAbstractTableModel):
    """A read-only table of records, one per row; subclasses set ``COLUMNS`` and ``data()``."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []

    def _reset(self, rows) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_record(self, row: int):
        """The record shown in ``row`` (None outside the table)."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable  # never editable
