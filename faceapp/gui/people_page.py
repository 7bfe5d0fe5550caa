"""The People page: everyone enrolled, with search, details, photos, deactivation and deletion.

Every change goes through faceapp.service.enroll, which refreshes the live gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from PySide6.QtCore import QSize, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import FaceAppError
from faceapp.core.types import Person
from faceapp.gui.admin import AdminGate, admin_allowed, export_person_dialog
from faceapp.gui.enroll_dialog import FrameProvider, open_enroll_dialog
from faceapp.gui.group_list import GroupList
from faceapp.gui.import_dialog import ImportDialog, RecomputeDialog
from faceapp.gui.qt_env import emit
from faceapp.gui.widgets import BAD_COLOUR, thumbnail_icon
from faceapp.service import enroll, privacy, templates
from faceapp.service.app import App
from faceapp.service.enroll import RemovalSummary

ROW_ICON = 48
COLUMNS = ["", "Name", "Employee ID", "Department", "Photos", "Templates", "Status"]
COL_NAME, COL_PHOTOS, COL_TEMPLATES, COL_STATUS = 1, 4, 5, 6

D = TypeVar("D", bound=QDialog)


@dataclass(frozen=True)
class DeleteChoice:
    remove_entries: bool


def delete_texts(summary: RemovalSummary) -> tuple[str, str | None]:
    """The Delete dialog's explanation, and the "also delete entries" choice (None: no entries)."""
    text = (f"This removes their {summary.photos} stored photo(s) (face crops) and {summary.templates} "
            f"template(s): they will no longer be recognised. This cannot be undone.")
    n = summary.entries
    if n == 0:
        return text + "\n\nThey have no log entries.", None
    entries = "their log entry" if n == 1 else f"their {n} log entries"
    kept = "is" if n == 1 else "are"
    return (text + f"\n\n{entries[:1].upper() + entries[1:]} {kept} kept with the name as text and without "
            f"snapshots, unless you tick the box below.", f"Also delete {entries}")


def ask_delete(parent: QWidget | None, summary: RemovalSummary) -> DeleteChoice | None:
    """Confirm a deletion, saying exactly what goes; None when cancelled. Tests replace this."""
    p = summary.person
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Delete person")
    box.setText(f"Delete {p.name} for good?")
    text, also = delete_texts(summary)
    box.setInformativeText(text)
    check = QCheckBox(also or "")
    if also:
        box.setCheckBox(check)
    delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    if box.clickedButton() is not delete:
        return None
    return DeleteChoice(remove_entries=check.isChecked())


def ask_scrub(parent: QWidget | None, name: str, copies: int, folder: str) -> bool:
    """After a deletion: offer to remove the person from the safety copies that still hold them
    (kept before restores and upgrades). True to scrub them. Tests replace this."""
    what = "1 safety copy" if copies == 1 else f"{copies} safety copies"
    answer = QMessageBox.question(
        parent, "Safety copies",
        f"{what} of the database in {folder} still hold {name} (photos and templates).\n\n"
        f"Remove {name} from {'it' if copies == 1 else 'them'} too? Otherwise they go when the copies "
        f"reach their retention age.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes


class PersonEditDialog(QDialog):
    """Name, employee id, department and the active flag of one person."""

    def __init__(self, person: Person, parent: QWidget | None = None, app: App | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Edit {person.name}")
        form = QFormLayout(self)
        self.name_edit = QLineEdit(person.name)
        self.name_edit.setMaxLength(200)
        self.employee_edit = QLineEdit(person.employee_id or "")
        self.department_edit = QLineEdit(person.department or "")
        self.active_check = QCheckBox("Active (recognised at the door)")
        self.active_check.setChecked(person.active)
        form.addRow("&Name:", self.name_edit)
        form.addRow("&Employee ID:", self.employee_edit)
        form.addRow("&Department:", self.department_edit)
        form.addRow("", self.active_check)
        self.groups = GroupList(app, person.id, self) if app is not None else None
        if self.groups is not None:
            form.addRow("&Groups:", self.groups)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict:
        # "" clears an optional field in the store; None would leave it unchanged.
        return {"name": self.name_edit.text(), "employee_id": self.employee_edit.text(),
                "department": self.department_edit.text(), "active": self.active_check.isChecked()}


class PersonPhotosDialog(QDialog):
    """The stored face crops of one person; a single photo can be removed."""

    changed = Signal()

    def __init__(self, app: App, person_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.person_id = person_id
        self.resize(640, 420)
        layout = QVBoxLayout(self)
        self.title = QLabel()
        layout.addWidget(self.title)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(112, 112))
        self.list.setGridSize(QSize(140, 150))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.remove_button = QPushButton("&Remove photo")
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row.addWidget(close)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        person = self.app.store.get_person(self.person_id)
        self.setWindowTitle(f"Photos of {person.name}")
        self.title.setText(f"{person.name}: {person.n_photos} stored photo(s). "
                           f"These aligned face crops are what recognition compares with.")
        self.list.clear()
        for rec in self.app.store.photos(self.person_id):
            source = (rec.source or "").replace("\\", "/").rsplit("/", 1)[-1] or "photo"
            item = QListWidgetItem(thumbnail_icon(rec.crop, 112), f"{source[:16]}\n{rec.created[:10]}")
            item.setData(Qt.ItemDataRole.UserRole, rec.id)
            quality = f"{rec.quality:.2f}" if rec.quality is not None else "?"
            item.setToolTip(f"{rec.source or ''}\nadded {rec.created}\nquality score {quality}")
            self.list.addItem(item)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))

    def remove_selected(self) -> None:
        items = self.list.selectedItems()
        if not items:
            return
        if not admin_allowed(self, "remove a photo"):
            return
        photo_id = int(items[0].data(Qt.ItemDataRole.UserRole))
        last = self.list.count() == 1
        text = "Remove this photo and its template?"
        if last:
            text += "\nIt is the only photo: the person will not be recognised until photos are added."
        answer = QMessageBox.question(self, "Remove photo", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            enroll.remove_photo(self.app, photo_id)
        except FaceAppError as exc:
            QMessageBox.warning(self, "Not removed", str(exc))
        self.refresh()
        emit(self.changed)


class PeoplePage(QWidget):
    """List of enrolled people with everything an administrator does to them.

    Every change asks ``gate`` (or the window's ``admin_gate``) for the administrator password;
    a page without either (used on its own) allows them."""

    changed = Signal()  # after any change to people, photos or templates

    def __init__(self, app: App, parent: QWidget | None = None,
                 frame_provider: FrameProvider | None = None, gate: AdminGate | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.frame_provider = frame_provider
        self.gate = gate
        self._thumbs: dict[int, tuple[int, object]] = {}  # person id -> (photo id, QIcon)
        self._people: list[Person] = []
        self._build()
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._search_timer.start)
        self.refresh()
        # Shown in this same event-loop turn (a page opened on its own), the list is current:
        # showEvent skips its reload once.
        self._just_loaded = True
        QTimer.singleShot(0, self, self._loaded_earlier)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name, employee ID or department")
        self.search.setClearButtonEnabled(True)
        self.show_inactive = QCheckBox("Show inactive")
        self.show_inactive.setChecked(True)
        self.show_inactive.toggled.connect(self.refresh)
        self.enroll_button = QPushButton("&Enroll…")
        self.enroll_button.clicked.connect(self.enroll)
        self.import_button = QPushButton("&Import folder…")
        self.import_button.clicked.connect(self.import_folder)
        top.addWidget(self.search, 1)
        top.addWidget(self.show_inactive)
        top.addWidget(self.enroll_button)
        top.addWidget(self.import_button)
        layout.addLayout(top)

        self.banner = QWidget()
        banner = QHBoxLayout(self.banner)
        banner.setContentsMargins(8, 4, 8, 4)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.recompute_button = QPushButton("&Recompute templates…")
        self.recompute_button.clicked.connect(self.recompute)
        banner.addWidget(self.banner_label, 1)
        banner.addWidget(self.recompute_button)
        self.banner.setStyleSheet("background: #fff4d6; color: #5a4500;")
        layout.addWidget(self.banner)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setIconSize(QSize(ROW_ICON, ROW_ICON))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(ROW_ICON + 6)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(0, ROW_ICON + 12)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col in (2, 3, COL_PHOTOS, COL_TEMPLATES, COL_STATUS):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self.edit())
        layout.addWidget(self.table, 1)

        actions = QHBoxLayout()
        self.edit_button = QPushButton("E&dit…")
        self.edit_button.clicked.connect(self.edit)
        self.add_photos_button = QPushButton("Add &photos…")
        self.add_photos_button.clicked.connect(self.add_photos)
        self.photos_button = QPushButton("&View photos…")
        self.photos_button.clicked.connect(self.view_photos)
        self.active_button = QPushButton("De&activate")
        self.active_button.clicked.connect(self.toggle_active)
        self.delete_button = QPushButton("De&lete…")
        self.delete_button.clicked.connect(self.delete)
        self.export_button = QPushButton("E&xport stored data…")
        self.export_button.setToolTip("Everything stored about this person, as a .zip (subject-access request)")
        self.export_button.clicked.connect(self.export_data)
        self.count_label = QLabel()
        for b in self._person_buttons():
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.count_label)
        layout.addLayout(actions)

    # -- listing --------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the list from the store (keeps the selection when the person is still there)."""
        keep = self.selected_person_id()
        search = self.search.text().strip() or None
        everyone = search is None and self.show_inactive.isChecked()
        people = self.app.store.list_people(search=search, include_inactive=self.show_inactive.isChecked())
        counts = templates.template_counts(self.app)
        self._load_thumbnails()
        self._people = people
        self.table.setRowCount(len(people))
        for row, p in enumerate(people):
            icon_item = QTableWidgetItem()
            thumb = self._thumbs.get(p.id)
            if thumb is not None:
                icon_item.setIcon(thumb[1])
            icon_item.setData(Qt.ItemDataRole.UserRole, p.id)
            self.table.setItem(row, 0, icon_item)
            n_templates = counts.get(p.id, 0)
            cells = [p.name, p.employee_id or "", p.department or "", str(p.n_photos), str(n_templates),
                     "active" if p.active else "inactive"]
            for col, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, p.id)
                if col in (COL_PHOTOS, COL_TEMPLATES):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if not p.active or (col == COL_TEMPLATES and n_templates == 0):
                    item.setForeground(BAD_COLOUR if col == COL_TEMPLATES else Qt.GlobalColor.gray)
                self.table.setItem(row, col, item)
            if p.id == keep:
                self.table.selectRow(row)
        # Unfiltered, the list is everyone: no second query just to count them.
        total = len(people) if everyone else len(self.app.store.list_people())
        self.count_label.setText(f"{len(people)} of {total} people" if len(people) != total else f"{total} people")
        self._update_banner()
        self._update_buttons()

    def _load_thumbnails(self) -> None:
        # Only thumbnails whose first photo changed are read and decoded again.
        first = enroll.first_photo_ids(self.app)
        fresh = {pid: self._thumbs[pid] for pid, photo_id in first.items()
                 if pid in self._thumbs and self._thumbs[pid][0] == photo_id}
        missing = [photo_id for pid, photo_id in first.items() if pid not in fresh]
        for pid, (photo_id, crop) in enroll.first_crops(self.app, missing).items():
            fresh[pid] = (photo_id, thumbnail_icon(crop, ROW_ICON))
        self._thumbs = fresh

    def _update_banner(self) -> None:
        st = templates.template_status(self.app)
        self.banner.setVisible(not st.complete)
        if not st.complete:
            self.banner_label.setText(
                f"{st.missing} of {st.photos} photos have no template for the current recognition model "
                f"({st.model_id}): those people are not recognised yet.")

    def person_ids(self) -> list[int]:
        """Ids in the order shown."""
        return [p.id for p in self._people]

    def selected_person_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select_person(self, person_id: int) -> bool:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == person_id:
                self.table.selectRow(row)
                return True
        return False

    def _selected_person(self) -> Person | None:
        pid = self.selected_person_id()
        if pid is None:
            return None
        try:
            return self.app.store.get_person(pid)
        except FaceAppError:
            self.refresh()
            return None

    def _update_buttons(self) -> None:
        person = next((p for p in self._people if p.id == self.selected_person_id()), None)
        for b in self._person_buttons():
            b.setEnabled(person is not None)
        self.active_button.setText("Re&activate" if person is not None and not person.active else "De&activate")

    def _person_buttons(self) -> tuple[QPushButton, ...]:
        return (self.edit_button, self.add_photos_button, self.photos_button, self.active_button,
                self.delete_button, self.export_button)

    def _changed(self) -> None:
        self.refresh()
        emit(self.changed)

    def _allowed(self, reason: str) -> bool:
        return admin_allowed(self, reason, self.gate)

    # -- actions --------------------------------------------------------------------
    def enroll(self):
        """Open the enrollment dialog for a new person (non-blocking); returns it (None if refused)."""
        if not self._allowed("enroll a person"):
            return None
        dialog = open_enroll_dialog(self.app, self.frame_provider, self)
        dialog.enrolled.connect(self._on_enrolled)
        return dialog

    def add_photos(self):
        person = self._selected_person()
        if person is None or not self._allowed(f"add photos of {person.name}"):
            return None
        dialog = open_enroll_dialog(self.app, self.frame_provider, self, person_id=person.id)
        dialog.enrolled.connect(self._on_enrolled)
        return dialog

    def _on_enrolled(self, person_id: int) -> None:
        self._changed()
        self.select_person(person_id)

    def edit(self) -> None:
        person = self._selected_person()
        if person is None or not self._allowed(f"edit the details of {person.name}"):
            return
        dialog = PersonEditDialog(person, self, app=self.app)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        if self.apply_edit(person.id, **dialog.values()) and dialog.groups is not None:
            try:
                dialog.groups.apply(person.id)
            except FaceAppError as exc:
                QMessageBox.warning(self, "Groups not saved", str(exc))
            self._changed()

    def apply_edit(self, person_id: int, **values) -> bool:
        """Save changed details of a person (asks for the password if the gate locked meanwhile)."""
        if not self._allowed("change a person's details"):
            return False
        return self._save_edit(person_id, **values)

    def _save_edit(self, person_id: int, **values) -> bool:
        # Callers have asked the gate already.
        try:
            enroll.update_person(self.app, person_id, **values)
        except FaceAppError as exc:
            QMessageBox.warning(self, "Not saved", str(exc))
            return False
        self._changed()
        return True

    def view_photos(self) -> PersonPhotosDialog | None:
        person = self._selected_person()
        if person is None:
            return None
        dialog = PersonPhotosDialog(self.app, person.id, self)  # viewing is free; removing asks
        return self._open(dialog, dialog.changed)

    def toggle_active(self) -> None:
        person = self._selected_person()
        verb = "deactivate" if person is not None and person.active else "reactivate"
        if person is None or not self._allowed(f"{verb} {person.name}"):
            return
        self._save_edit(person.id, active=not person.active)

    def delete(self) -> bool:
        person = self._selected_person()
        if person is None or not self._allowed(f"delete {person.name}"):
            return False
        summary = enroll.removal_summary(self.app, person.id)
        choice = ask_delete(self, summary)
        if choice is None:
            return False
        holding = privacy.copies_holding(self.app, person)  # asked before: the copies are matched by name
        try:
            enroll.delete_person(self.app, person.id, remove_entries=choice.remove_entries)
        except FaceAppError as exc:
            QMessageBox.warning(self, "Not deleted", str(exc))
            return False
        self._changed()
        if holding and ask_scrub(self, person.name, len(holding), str(holding[0].parent)):
            try:
                privacy.scrub_person_from_safety_copies(self.app, person, choice.remove_entries)
            except FaceAppError as exc:
                QMessageBox.warning(self, "Safety copies", str(exc))
        return True

    def export_data(self):
        """Subject-access export of the selected person to a .zip; returns its path (None if not done)."""
        person = self._selected_person()
        if person is None:
            return None
        return export_person_dialog(self, self.app, person.id, self.gate)

    def import_folder(self) -> ImportDialog | None:
        if not self._allowed("import people from a folder"):
            return None
        dialog = ImportDialog(self.app, self)
        return self._open(dialog, dialog.imported)

    def recompute(self) -> RecomputeDialog | None:
        if not self._allowed("recompute templates"):
            return None
        dialog = RecomputeDialog(self.app, self)
        return self._open(dialog, dialog.recomputed)

    def _open(self, dialog: D, changed: SignalInstance) -> D:
        """Show ``dialog`` without blocking (it deletes itself when closed); the list reloads
        whenever its ``changed`` signal fires."""
        changed.connect(lambda *_args: self._changed())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _loaded_earlier(self) -> None:
        self._just_loaded = False

    def showEvent(self, event) -> None:
        # People may have changed elsewhere (CLI, another dialog) while the tab was hidden.
        if not self._just_loaded:
            self.refresh()
        self._just_loaded = False
        super().showEvent(event)


def install_people_page(window, app: App) -> PeoplePage:
    """Add the People page and a People menu (Enroll…, Import folder…, Recompute templates…)
    to the main window. Its menu actions are admin actions: reception mode disables them."""
    page = PeoplePage(app, None, frame_provider=getattr(window, "latest_frame", None),
                      gate=getattr(window, "admin_gate", None))
    window.add_page("People", page)
    menu = window.menuBar().addMenu("&People")
    for text, slot in (("&Enroll…", page.enroll), ("&Import folder…", page.import_folder),
                       ("&Recompute templates…", page.recompute)):
        action = QAction(text, window)
        action.triggered.connect(lambda _checked=False, s=slot: s())
        menu.addAction(action)
        window.add_admin_action(action)
    window.people_page = page
    return page
