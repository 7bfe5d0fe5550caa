"""Administrator pieces of the window: the password gate, the audit-log page and the privacy
settings dialog. Standalone: the main window wires them with :func:`install_admin`.

- :class:`AdminGate` guards administrative actions. ``gate.require(parent, "delete a person")``
  returns True at once while unlocked, else asks for the administrator password (on the very
  first run: asks to set one). After a right password it stays unlocked for
  ``unlock_minutes`` (default 5) or until :meth:`AdminGate.lock`. Wrong passwords slow down
  further tries (see :mod:`faceapp.service.security`): the dialog shows "try again in N s" and
  disables its button meanwhile; nothing sleeps on the GUI thread. While unlocked, audit rows
  are written as "gui:admin", otherwise as "gui:reception".
- :class:`AuditPage`: a read-only table of the audit log with a filter and CSV export.
- :class:`PrivacySettingsDialog`: retention days of snapshots and entries, with a preview of
  what applying them removes now.
- :func:`export_person_dialog`, :func:`backup_dialog`: subject-access export and backup, for menus.

Dialogs are shown through ``AdminGate.run_dialog`` and the module-level ``ask_save_path`` /
``show_message``, which tests replace (nothing modal ever blocks a test).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import FaceAppError
from faceapp.gui.widgets import Index, RecordTableModel
from faceapp.service import privacy, security
from faceapp.service.app import App
from faceapp.store.audit import AuditLog, AuditRecord, default_actor, removed_label
from faceapp.store.backup import default_backup_name

log = logging.getLogger(__name__)

UNLOCK_MINUTES = 5.0
AUDIT_LIMIT = 2000
# Audit actors: the OS account running the window plus "gui" (never from the environment);
# while the gate is locked, actions come from whoever stands at the reception screen.
ACTOR_ADMIN = default_actor("gui")
ACTOR_LOCKED = f"{ACTOR_ADMIN} (reception)"
MAX_RETENTION_DAYS = 3650



# -- replaceable modal helpers (tests swap these) ----------------------------------------------------
def ask_save_path(parent: QWidget | None, title: str, suggested: str, filters: str) -> str:
    """A file name to save to ('' when cancelled)."""
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, filters)
    return path


def show_message(parent: QWidget | None, title: str, text: str, error: bool = False) -> None:
    """Tell the user something (a modal box)."""
    if error:
        QMessageBox.warning(parent, title, text)
    else:
        QMessageBox.information(parent, title, text)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- password dialogs ----------------------------------------------------------------------------------
class _MessageDialog(QDialog):
    """A dialog with a ``message`` label that grows the dialog when it fills, so the intro text
    above it is never squeezed out."""

    message: QLabel

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.layout().activate()
        self.adjustSize()


class PasswordDialog(_MessageDialog):
    """Asks for the administrator password and checks it itself, so that a wrong one keeps the
    dialog open with the reason, and the slow-down shows as a countdown on the button."""

    def __init__(self, app: App, reason: str, parent: QWidget | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.app = app
        self._clock = clock
        self.setWindowTitle("Administrator password")
        self.setModal(True)
        layout = QVBoxLayout(self)
        self.intro = QLabel(f"To {reason}, enter the administrator password." if reason
                            else "Enter the administrator password.", self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setObjectName("adminPassword")
        layout.addWidget(self.password)
        self.message = QLabel(self)
        self.message.setObjectName("passwordMessage")
        self.message.setStyleSheet("color: #c62828;")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Unlock")
        self.buttons.accepted.connect(self.try_password)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._tick()

    def try_password(self) -> bool:
        """Check what was typed; accepts the dialog when right. Returns True if accepted."""
        if not self.ok_button.isEnabled():
            return False
        try:
            result = security.check_admin_password(self.app.store, self.password.text(), now=self._clock())
        except FaceAppError as exc:
            self._say(str(exc))
            return False
        if result.ok:
            self.message.clear()
            self.accept()
            return True
        self.password.clear()
        self._say(_sentence(result.message))
        self._tick()
        return False

    def _tick(self) -> None:
        wait = security.retry_after(self.app.store, now=self._clock())
        waiting = wait > 0
        self.ok_button.setEnabled(not waiting)
        if waiting:
            self.ok_button.setText(f"Wait {max(1, int(wait + 0.999))} s")
            if not self._timer.isActive():
                self._timer.start()
        else:
            self.ok_button.setText("Unlock")
            self._timer.stop()

    def done(self, result: int) -> None:  # noqa: D401 - Qt API
        self._timer.stop()
        super().done(result)


class SetPasswordDialog(_MessageDialog):
    """Sets the administrator password (first run), or changes it: typed twice, minimum length."""

    def __init__(self, app: App, parent: QWidget | None = None, first_run: bool = True) -> None:
        super().__init__(parent)
        self.app = app
        self.first_run = first_run
        self.setWindowTitle("Set the administrator password" if first_run else "Change the administrator password")
        self.setModal(True)
        layout = QVBoxLayout(self)
        intro = ("Choose the administrator password. It protects enrollment, deletion, settings, the "
                 "threshold and exports; the reception screen only recognises." if first_run
                 else "Choose a new administrator password.")
        self.intro = QLabel(intro + f" At least {security.MIN_PASSWORD_LENGTH} characters.", self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        form = QFormLayout()
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QLineEdit(self)
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Password", self.password)
        form.addRow("Repeat", self.confirm)
        layout.addLayout(form)
        self.message = QLabel(self)
        self.message.setObjectName("passwordMessage")
        self.message.setStyleSheet("color: #c62828;")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Set password")
        buttons.accepted.connect(self.try_set)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def try_set(self) -> bool:
        """Validate and store the password; accepts the dialog on success."""
        first, second = self.password.text(), self.confirm.text()
        try:
            security.validate_new_password(first)
        except FaceAppError as exc:
            self._say(_sentence(str(exc)))
            return False
        if first != second:
            self._say("The two passwords differ.")
            self.confirm.clear()
            return False
        try:
            security.set_admin_password(self.app.store, first)
        except FaceAppError as exc:
            self._say(str(exc))
            return False
        self.accept()
        return True


# -- the gate ------------------------------------------------------------------------------------------
class AdminGate(QObject):
    """Guards administrative actions with the administrator password (see the module docstring)."""

    lockChanged = Signal(bool)  # True when unlocked

    def __init__(self, app: App, unlock_minutes: float = UNLOCK_MINUTES, parent: QObject | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.app = app
        self.unlock_seconds = max(0.0, float(unlock_minutes) * 60.0)
        self._clock = clock
        self._wall_clock = wall_clock
        self._until: float | None = None
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(self._expire)
        app.store.actor = ACTOR_LOCKED

    # Replaced in tests: shows a dialog and returns its result code.
    def run_dialog(self, dialog: QDialog) -> int:
        return dialog.exec()

    @property
    def has_password(self) -> bool:
        return security.has_admin_password(self.app.store)

    @property
    def unlocked(self) -> bool:
        if self._until is None:
            return False
        if self._clock() >= self._until:
            self.lock()
            return False
        return True

    def remaining(self) -> float:
        """Seconds until the gate locks again (0 when locked)."""
        return max(0.0, self._until - self._clock()) if self.unlocked and self._until is not None else 0.0

    def require(self, parent: QWidget | None, reason: str) -> bool:
        """True if the administrator may go on: already unlocked, or the password was given now.

        ``reason`` completes "To ..., enter the administrator password" (e.g. "delete a person")."""
        if self.unlocked:
            return True
        if not self.has_password:
            ok = self.run_dialog(SetPasswordDialog(self.app, parent, first_run=True)) == QDialog.DialogCode.Accepted
        else:
            ok = self.run_dialog(PasswordDialog(self.app, reason, parent, clock=self._wall_clock)) \
                == QDialog.DialogCode.Accepted
        if ok:
            self._unlock()
        else:
            log.info("administrator action refused: %s", reason)
        return ok

    def protect(self, parent: QWidget | None, reason: str, fn: Callable) -> Callable:
        """A slot that asks for the password, then calls ``fn`` (for menu actions and buttons)."""
        def slot(*_args) -> None:
            if self.require(parent, reason):
                fn()
        return slot

    def change_password(self, parent: QWidget | None) -> bool:
        """Ask for the current password (unless unlocked), then for a new one."""
        if not self.require(parent, "change the administrator password"):
            return False
        return self.run_dialog(SetPasswordDialog(self.app, parent, first_run=False)) == QDialog.DialogCode.Accepted

    def lock(self) -> None:
        """Forget the unlock now (leaving the desk, entering reception mode)."""
        was = self._until is not None
        self._until = None
        self._expiry.stop()
        self.app.store.actor = ACTOR_LOCKED
        if was:
            self.lockChanged.emit(False)

    def _unlock(self) -> None:
        self._until = self._clock() + self.unlock_seconds
        self.app.store.actor = ACTOR_ADMIN
        self._expiry.start(int(self.unlock_seconds * 1000) + 50)
        self.lockChanged.emit(True)

    def _expire(self) -> None:
        if self._until is not None and self._clock() >= self._until:
            self.lock()
        elif self._until is not None:
            self._expiry.start(int((self._until - self._clock()) * 1000) + 50)


# -- the audit page ------------------------------------------------------------------------------------
class AuditTableModel(RecordTableModel):
    """Audit rows (newest first): time (local), who, action, about, details. Read-only."""

    COLUMNS = ("Time", "Who", "Action", "About", "Details")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._names: dict[str, str] = {}

    def set_rows(self, rows: list[AuditRecord], names: dict[str, str] | None = None) -> None:
        self._names = dict(names or {})
        self._reset(rows)

    def record(self, row: int) -> AuditRecord | None:
        return self.row_record(row)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        r = self.record(index.row())
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"#{r.id}  {r.time} UTC\n{r.details}"
        if role == Qt.ItemDataRole.UserRole:
            return r.id
        return None

    def text(self, r: AuditRecord, col: int) -> str:
        if col == 0:
            try:
                return datetime.fromisoformat(r.time).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            except ValueError:
                return r.time
        if col == 1:
            return r.actor
        if col == 2:
            return r.action
        if col == 3:
            return self.about(r)
        return r.describe()

    def about(self, r: AuditRecord) -> str:
        """The target, with the person's name when it is known (removed people: "removed person #ID")."""
        target = r.target or ""
        if target.startswith("person:"):
            name = self._names.get(target) or r.changes.get("name")
            if isinstance(name, list):
                name = name[-1]
            if name == removed_label(target[7:]):
                return name
            return f"{name} (#{target[7:]})" if name else target
        return target


class AuditPage(QWidget):
    """The audit log, newest first: read-only table, text filter, Refresh and Export CSV."""

    def __init__(self, app: App, gate: AdminGate | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.gate = gate
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter: action, person, who…")
        self.filter.setClearButtonEnabled(True)
        self.filter.returnPressed.connect(self.refresh)
        bar.addWidget(self.filter, 1)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        bar.addWidget(self.refresh_button)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.clicked.connect(self.export_csv)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)
        self.model = AuditTableModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.status = QLabel(self)
        self.status.setObjectName("auditStatus")
        layout.addWidget(self.status)
        self.refresh()

    def refresh(self) -> None:
        """Reload the newest rows matching the filter."""
        text = self.filter.text().strip() or None
        try:
            rows = AuditLog(self.app.store).records(search=text, limit=AUDIT_LIMIT)
            names = {f"person:{p.id}": p.name for p in self.app.store.list_people()}
        except FaceAppError as exc:
            self.status.setText(f"Cannot read the audit log: {exc}")
            return
        self.model.set_rows(rows, names)
        more = " (newest shown)" if len(rows) >= AUDIT_LIMIT else ""
        self.status.setText(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}. "
                            "The audit log cannot be edited or deleted.")

    def export_csv(self) -> Path | None:
        """Ask for a file and write the whole audit log to it as CSV (an administrator action)."""
        if not admin_allowed(self, "export the audit log", self.gate):
            return None
        suggested = str(Path.home() / f"faceapp-audit-{datetime.now():%Y%m%d}.csv")
        path = ask_save_path(self, "Export audit log", suggested, "CSV files (*.csv);;All files (*)")
        if not path:
            return None
        try:
            n = security.export_audit(self.app, path)
        except FaceAppError as exc:
            self.status.setText(f"Export failed: {exc}")
            return None
        self.refresh()
        self.status.setText(f"Wrote {n} rows to {path}")
        return Path(path)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh()


# -- privacy settings ----------------------------------------------------------------------------------
class PrivacySettingsDialog(QDialog):
    """How long unknown/denied snapshots and log entries are kept (0 = keep forever).

    Shows what applying the values would remove now; OK saves them (audited) and purges."""

    def __init__(self, app: App, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.report: privacy.PurgeReport | None = None
        self.setWindowTitle("Privacy and retention")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        s = app.settings
        self.snapshot_days = self._spin(s.snapshot_retention_days)
        self.entry_days = self._spin(s.entry_retention_days)
        form.addRow("Keep snapshots and face data of entries", self.snapshot_days)
        form.addRow("Keep entry log", self.entry_days)
        layout.addLayout(form)
        note = QLabel("Older snapshots and entries are deleted automatically when recognition runs. "
                      "Deleting a person removes their photos and templates at once. "
                      "The audit log is never deleted.", self)
        note.setWordWrap(True)
        layout.addWidget(note)
        self.preview = QLabel(self)
        self.preview.setObjectName("retentionPreview")
        self.preview.setWordWrap(True)
        layout.addWidget(self.preview)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Save and apply")
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.snapshot_days.valueChanged.connect(self.update_preview)
        self.entry_days.valueChanged.connect(self.update_preview)
        self.update_preview()

    def _spin(self, value: int) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(0, MAX_RETENTION_DAYS)
        box.setSuffix(" days")
        box.setSpecialValueText("forever")
        box.setValue(max(0, min(MAX_RETENTION_DAYS, int(value))))
        return box

    def update_preview(self) -> None:
        p = privacy.preview_retention(self.app.store, self.snapshot_days.value(), self.entry_days.value())
        if p.removed_anything:
            self.preview.setText(f"Applying now deletes {p.snapshots} snapshot(s) and {p.entries} entr"
                                 f"{'y' if p.entries == 1 else 'ies'}.")
            self.preview.setStyleSheet("color: #c62828;")
        else:
            self.preview.setText("Applying now deletes nothing.")
            self.preview.setStyleSheet("")

    def apply(self) -> privacy.PurgeReport:
        """Save the values and purge now; accepts the dialog."""
        self.app.update_settings(snapshot_retention_days=self.snapshot_days.value(),
                                 entry_retention_days=self.entry_days.value())
        self.report = privacy.apply_retention(self.app)
        self.accept()
        return self.report


# -- actions for menus and other pages -------------------------------------------------------------
def find_gate(widget: QObject | None, gate: AdminGate | None = None) -> AdminGate | None:
    """``gate`` if given, else the gate of ``widget`` or its nearest parent holding one (the main
    window's ``admin_gate``); None for a widget used on its own."""
    obj = widget
    while gate is None and obj is not None:
        for name in ("admin_gate", "gate"):
            found = getattr(obj, name, None)
            if isinstance(found, AdminGate):
                return found
        obj = obj.parent()
    return gate


def admin_allowed(widget: QWidget | None, reason: str, gate: AdminGate | None = None) -> bool:
    """Whether an administrative action started from ``widget`` may go on: asks the window's gate
    for the password when it is locked. A widget without a gate (used standalone) is allowed."""
    found = find_gate(widget, gate)
    return found is None or found.require(widget, reason)


def export_person_dialog(parent: QWidget | None, app: App, person_id: int, gate: AdminGate | None = None) -> Path | None:
    """Subject-access export of one person to a .zip the user picks (People page, context menu).
    Asks ``gate`` (or the parent window's) for the administrator password first."""
    if not admin_allowed(parent, "export everything stored about a person", gate):
        return None
    person = app.store.get_person(person_id)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in person.name)[:60] or f"person-{person_id}"
    path = ask_save_path(parent, f"Export everything stored about {person.name}",
                         str(Path.home() / f"{safe}-data.zip"), "Zip files (*.zip)")
    if not path:
        return None
    if not path.lower().endswith(".zip"):
        path += ".zip"
    try:
        result = privacy.export_person_data(app, person_id, path)
    except FaceAppError as exc:
        show_message(parent, "Export failed", str(exc), error=True)
        return None
    show_message(parent, "Export done", f"Wrote everything stored about {person.name} to {path}: "
                                        f"{result.describe()}.")
    return result.path


def backup_dialog(parent: QWidget | None, app: App, gate: AdminGate | None = None) -> Path | None:
    """Back up the database to a file the user picks (safe while recognition runs).
    Asks ``gate`` (or the parent window's) for the administrator password first."""
    if not admin_allowed(parent, "back up the database", gate):
        return None
    path = ask_save_path(parent, "Back up the database", str(Path.home() / default_backup_name()),
                         "faceapp backups (*.faceapp-backup);;All files (*)")
    if not path:
        return None
    try:
        info = app.backup(path)
    except FaceAppError as exc:
        show_message(parent, "Backup failed", str(exc), error=True)
        return None
    show_message(parent, "Backup done", f"Backed up {info.describe()} to {path}.")
    return Path(path)


def install_admin(window, app: App, unlock_minutes: float = UNLOCK_MINUTES) -> AdminGate:
    """Give a MainWindow its gate, the Audit log page and an Admin menu; returns the gate
    (also ``window.admin_gate``). Switching to an administrator page asks for the password;
    entering reception mode locks the gate."""
    gate = AdminGate(app, unlock_minutes, parent=window)
    window.admin_gate = gate
    window.add_page("Audit log", AuditPage(app, gate), admin=True)

    menu = window.menuBar().addMenu("&Admin")
    entries = (
        ("&Privacy and retention…", lambda: PrivacySettingsDialog(app, window).exec(), "change privacy settings"),
        ("&Back up database…", lambda: backup_dialog(window, app), "back up the database"),
        ("&Change administrator password…", lambda: gate.change_password(window), None),
    )
    for text, fn, reason in entries:
        action = QAction(text, window)
        action.triggered.connect(gate.protect(window, reason, fn) if reason else (lambda *_a, f=fn: f()))
        menu.addAction(action)
        window.add_admin_action(action)
    menu.addSeparator()
    from faceapp.gui.lock_state import LockState  # it builds on AdminGate (this module)
    window.lock_state = LockState(window, gate)
    menu.addAction(window.lock_state.lock_action)
    window.add_admin_action(window.lock_state.lock_action)  # reception mode is locked anyway

    tabs = window.tabs

    def on_tab(index: int) -> None:
        widget = tabs.widget(index)
        if widget is not None and widget.property("adminPage") and not gate.unlocked:
            title = tabs.tabText(index).replace("&", "")
            if not gate.require(window, f"open the {title} page"):
                tabs.blockSignals(True)
                tabs.setCurrentIndex(0)  # the Live page
                tabs.blockSignals(False)

    tabs.currentChanged.connect(on_tab)
    window.receptionChanged.connect(lambda on: gate.lock() if on else None)
    return gate
