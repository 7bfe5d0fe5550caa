"""The Doors page: doors (add, rename, remove, opening hours), access groups (add, remove) and
which groups each door admits; and which door this window is, chosen here or from the
status bar. Every change asks for the administrator password and is audited by the store.

Questions go through the module-level ``ask_text`` / ``confirm`` / ``show_error``, which
tests replace (nothing modal blocks a test)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.access import LIVENESS_MODES
from faceapp.core.errors import FaceAppError
from faceapp.gui.admin import admin_allowed
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore, Door

log = logging.getLogger(__name__)

HOURS_HELP = ("Opening hours, e.g. 'Mon-Fri 07:00-19:00' or 'Mon-Fri 22:00-06:00, Sat 08:00-12:00'; "
              "empty = always open.")


# -- replaceable modal helpers (tests swap these) ------------------------------------------------
def ask_text(parent: QWidget | None, title: str, label: str, text: str = "") -> str | None:
    """One line of text from the user; None when cancelled."""
    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value if ok else None


def ask_item(parent: QWidget | None, title: str, label: str, items: list[str], current: str) -> str | None:
    """One of ``items`` chosen by the user; None when cancelled."""
    value, ok = QInputDialog.getItem(parent, title, label, items, max(0, items.index(current)) if current in items
                                     else 0, False)
    return value if ok else None


LIVENESS_HELP = ("Liveness check for known faces at this door:\n"
                 "off: none (as before)\n"
                 "passive: the face must look live to the anti-spoofing models (stops printed photos and "
                 "most phone screens; needs the minifasnet model pack)\n"
                 "challenge: passive, and the person turns the head left and right when asked "
                 "(a still photo cannot)")


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    return QMessageBox.question(parent, title, text) == QMessageBox.StandardButton.Yes


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def door_summary(door: Door) -> str:
    """Who a door admits, in words."""
    if door.open_to_all:
        return "everyone enrolled"
    return ", ".join(f"{g} ({h})" if h else g for g, h in door.groups)


class DoorsPage(QWidget):
    """Doors on the left, the selected door's groups on the right (see the module docstring)."""

    COLUMNS = ("Door", "Hours", "Admits", "Liveness", "")

    def __init__(self, app: App, window=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.window_ = window  # the MainWindow whose door "Use for this window" sets
        self.store = AttendanceStore(app.store)
        self._filling = False
        layout = QVBoxLayout(self)
        intro = QLabel("A door with no groups admits every enrolled person within its hours; with groups, "
                       "only their members. Tick the groups a door admits.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        body = QHBoxLayout()
        left = QVBoxLayout()
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_groups)
        left.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("&Add door…", self)
        self.rename_button = QPushButton("Re&name…", self)
        self.hours_button = QPushButton("&Hours…", self)
        self.liveness_button = QPushButton("&Liveness…", self)
        self.remove_button = QPushButton("&Remove", self)
        self.use_button = QPushButton("&Use for this window", self)
        for button, slot in ((self.add_button, self.add_door), (self.rename_button, self.rename_door),
                             (self.hours_button, self.set_hours), (self.liveness_button, self.set_liveness),
                             (self.remove_button, self.remove_door),
                             (self.use_button, self.use_for_window)):
            button.clicked.connect(lambda *_a, f=slot: f())
            buttons.addWidget(button)
        buttons.addStretch(1)
        left.addLayout(buttons)
        body.addLayout(left, 3)
        right = QVBoxLayout()
        self.groups_title = QLabel("Groups admitted", self)
        right.addWidget(self.groups_title)
        self.groups = QListWidget(self)
        self.groups.setObjectName("doorGroups")
        self.groups.itemChanged.connect(self._group_toggled)
        right.addWidget(self.groups, 1)
        gbuttons = QHBoxLayout()
        self.add_group_button = QPushButton("Add &group…", self)
        self.add_group_button.clicked.connect(lambda *_: self.add_group())
        self.remove_group_button = QPushButton("Remove group", self)
        self.remove_group_button.clicked.connect(lambda *_: self.remove_group())
        gbuttons.addWidget(self.add_group_button)
        gbuttons.addWidget(self.remove_group_button)
        right.addLayout(gbuttons)
        body.addLayout(right, 2)
        layout.addLayout(body, 1)
        self.status = QLabel(self)
        self.status.setObjectName("doorsStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.refresh()

    # -- reading --------------------------------------------------------------------------------
    def this_door(self) -> str:
        live = getattr(self.window_, "live", None)
        return live.current_door if live is not None else self.app.settings.door

    def door_names(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def selected_door(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def select_door(self, name: str) -> bool:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).text() == name:
                self.table.selectRow(r)
                return True
        return False

    def refresh(self) -> None:
        """Reload doors and groups from the database (keeps the selection)."""
        selected = self.selected_door()
        try:
            doors = self.store.doors()
        except FaceAppError as exc:
            self.status.setText(f"Cannot read the doors: {exc}")
            return
        here = self.this_door()
        self.table.setRowCount(len(doors))
        for r, d in enumerate(doors):
            cells = (d.name, d.hours or "always", door_summary(d), d.liveness,
                     "this window" if d.name == here else "")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        if not doors:
            self.status.setText(f"No doors yet: this window logs as '{here}', which admits everyone enrolled. "
                                "Add doors to restrict access.")
        else:
            self.status.setText(f"This window is the door '{here}'.")
        if selected is None or not self.select_door(selected):
            if doors:
                self.select_door(here if here in [d.name for d in doors] else doors[0].name)
        self._show_groups()
        self._update_buttons()

    def _show_groups(self) -> None:
        door_name = self.selected_door()
        self._filling = True
        try:
            self.groups.clear()
            door = None
            if door_name is not None:
                try:
                    door = self.store.door(door_name)
                except FaceAppError:
                    door = None
            admitted = {g for g, _h in door.groups} if door is not None else set()
            for group in self.store.groups():
                item = QListWidgetItem(f"{group.name}", self.groups)
                item.setData(Qt.ItemDataRole.UserRole, group.name)
                members = len(group.members)
                item.setToolTip(f"{members} member{'s' if members != 1 else ''}: {', '.join(group.members)}")
                flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
                if door is None:
                    flags &= ~Qt.ItemFlag.ItemIsEnabled
                item.setFlags(flags)
                item.setCheckState(Qt.CheckState.Checked if group.name in admitted else Qt.CheckState.Unchecked)
            self.groups_title.setText(f"Groups admitted at {door_name}" if door_name else "Groups")
        finally:
            self._filling = False
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.selected_door() is not None
        for b in (self.rename_button, self.hours_button, self.liveness_button, self.remove_button, self.use_button):
            b.setEnabled(has)
        self.remove_group_button.setEnabled(self.groups.currentItem() is not None or self.groups.count() > 0)

    # -- changes (each asks for the password; the store audits) ------------------------------
    def _do(self, reason: str, fn) -> bool:
        if not admin_allowed(self, reason):
            return False
        try:
            fn()
        except FaceAppError as exc:
            show_error(self, "Doors", str(exc))
            self.refresh()
            return False
        self.refresh()
        return True

    def add_door(self, name: str | None = None, hours: str | None = None) -> bool:
        if not admin_allowed(self, "add a door"):
            return False
        if name is None:
            name = ask_text(self, "Add door", "Name of the door:")
            if not name or not name.strip():
                return False
            hours = ask_text(self, "Add door", HOURS_HELP, "")
            if hours is None:
                return False
        ok = self._do("add a door", lambda: self.store.add_door(name, hours.strip() or None if hours else None))
        if ok:
            self.select_door(" ".join(name.split()))
        return ok

    def rename_door(self, new_name: str | None = None) -> bool:
        old = self.selected_door()
        if old is None or not admin_allowed(self, f"rename the door {old}"):
            return False
        if new_name is None:
            new_name = ask_text(self, "Rename door", f"New name for '{old}':", old)
            if not new_name or not new_name.strip():
                return False

        def rename() -> None:
            door = self.store.rename_door(old, new_name)
            if self.this_door() == old:  # this window keeps being the same door
                self._set_window_door(door.name)
        ok = self._do(f"rename the door {old}", rename)
        if ok:
            self.select_door(" ".join(new_name.split()))
        return ok

    def set_hours(self, hours: str | None = None) -> bool:
        door = self.selected_door()
        if door is None or not admin_allowed(self, f"change the hours of {door}"):
            return False
        if hours is None:
            current = self.store.door(door).hours or ""
            hours = ask_text(self, f"Hours of {door}", HOURS_HELP, current)
            if hours is None:
                return False
        return self._do(f"change the hours of {door}", lambda: self.store.set_door_hours(door, hours.strip() or None))

    def set_liveness(self, mode: str | None = None) -> bool:
        """Choose the selected door's liveness policy: off, passive or challenge."""
        door = self.selected_door()
        if door is None or not admin_allowed(self, f"change the liveness check of {door}"):
            return False
        if mode is None:
            mode = ask_item(self, f"Liveness at {door}", LIVENESS_HELP, list(LIVENESS_MODES),
                            self.store.door(door).liveness)
            if mode is None:
                return False
        ok = self._do(f"change the liveness check of {door}", lambda: self.store.set_door_liveness(door, mode))
        if ok and mode != "off" and not self.app.liveness_installed:
            self.status.setText(f"The liveness models are not installed (Models ▸ Install models…, pack "
                                f"minifasnet): until then '{door}' "
                                + ("denies known faces as not live." if mode == "passive"
                                   else "checks the head turn only."))
        return ok

    def remove_door(self) -> bool:
        door = self.selected_door()
        if door is None or not admin_allowed(self, f"remove the door {door}"):
            return False
        extra = " This window is that door: it will admit nobody until you choose another." \
            if door == self.this_door() else ""
        if not confirm(self, "Remove door", f"Remove the door '{door}'? Its log entries are kept.{extra}"):
            return False
        return self._do(f"remove the door {door}", lambda: self.store.remove_door(door))

    def use_for_window(self, name: str | None = None) -> bool:
        door = name or self.selected_door()
        if door is None or door == self.this_door():
            return False
        if not admin_allowed(self, f"make this window the door {door}"):
            return False
        self._set_window_door(door)
        self.app.audit("window.door", {"door": door})
        self.refresh()
        return True

    def _set_window_door(self, name: str) -> None:
        live = getattr(self.window_, "live", None)
        if live is not None:
            live.set_door(name)
        else:
            self.app.update_settings(door=name)
        indicator = getattr(self.window_, "door_indicator", None)
        if indicator is not None:
            indicator.update_text()

    def _group_toggled(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        door = self.selected_door()
        group = item.data(Qt.ItemDataRole.UserRole)
        on = item.checkState() == Qt.CheckState.Checked
        if door is None:
            return
        if on:
            self._do(f"let {group} through {door}", lambda: self.store.allow_group(door, group))
            return
        last = len(self.store.door(door).groups) == 1
        if last and not confirm(self, "Open the door to everyone?",
                                f"'{group}' is the last group of '{door}'. Without groups the door admits "
                                f"every enrolled person. Go on?"):
            self._show_groups()
            return
        self._do(f"stop letting {group} through {door}",
                 lambda: self.store.disallow_group(door, group, open_door=last))

    def add_group(self, name: str | None = None) -> bool:
        if not admin_allowed(self, "add an access group"):
            return False
        if name is None:
            name = ask_text(self, "Add group", "Name of the access group (e.g. Staff, Night shift):")
            if not name or not name.strip():
                return False
        return self._do("add an access group", lambda: self.store.add_group(name))

    def remove_group(self, name: str | None = None) -> bool:
        item = self.groups.currentItem()
        name = name or (item.data(Qt.ItemDataRole.UserRole) if item is not None else None)
        if name is None or not admin_allowed(self, f"remove the group {name}"):
            return False
        if not confirm(self, "Remove group", f"Remove the access group '{name}'? Its members stay enrolled."):
            return False
        return self._do(f"remove the group {name}", lambda: self.store.remove_group(name))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh()


class DoorIndicator(QToolButton):
    """'Door: Main entrance' in the status bar; a click offers the configured doors."""

    def __init__(self, window, app: App) -> None:
        super().__init__()
        self.window_ = window
        self.app = app
        self.setObjectName("doorIndicator")
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("The door this window decides and logs for. Click to choose another.")
        self.clicked.connect(self.show_menu)
        self.update_text()

    def update_text(self) -> None:
        self.setText(f"Door: {self.window_.live.current_door}")

    def choices(self) -> list[str]:
        return [d.name for d in AttendanceStore(self.app.store).doors()]

    def show_menu(self) -> None:
        menu = QMenu(self)
        here = self.window_.live.current_door
        for name in self.choices():
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name == here)
            action.triggered.connect(lambda *_a, n=name: self.choose(n))
        if menu.isEmpty():
            menu.addAction("No doors yet: add them on the Doors page").setEnabled(False)
        menu.popup(self.mapToGlobal(self.rect().topLeft()))
        self._menu = menu  # kept for tests

    def choose(self, name: str) -> bool:
        page = self.window_.page("Doors")
        if isinstance(page, DoorsPage):
            return page.use_for_window(name)
        return False


def install_doors_page(window, app: App) -> DoorsPage:
    """The Doors page and the status bar's door indicator."""
    page = DoorsPage(app, window)
    window.add_page("Doors", page, admin=True)
    window.door_indicator = DoorIndicator(window, app)
    window.status.add_indicator(window.door_indicator)
    return page
