"""A checklist of access groups, for the Enroll and Edit dialogs: which groups a person is in.
Saving applies only the difference (each assign / unassign is audited by the store)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore


class GroupList(QListWidget):
    """Every access group with a check box; ``checked()`` names the ticked ones."""

    def __init__(self, app: App, person_id: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("groupList")
        self._store = AttendanceStore(app.store)
        self._before = set(self._store.person_groups(person_id)) if person_id is not None else set()
        for group in self._store.groups():
            item = QListWidgetItem(group.name, self)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if group.name in self._before else Qt.CheckState.Unchecked)
        rows = max(1, min(4, self.count()))
        self.setMaximumHeight(self.sizeHintForRow(0) * rows + 2 * self.frameWidth() + 4 if self.count() else 40)
        self.setToolTip("Access groups: which doors let this person in (Doors page)")

    def set_checked(self, name: str, on: bool = True) -> None:
        for item in self.findItems(name, Qt.MatchFlag.MatchExactly):
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def checked(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())
                if self.item(i).checkState() == Qt.CheckState.Checked]

    def apply(self, person_id: int) -> None:
        """Assign / unassign ``person_id`` so their groups are the ticked ones."""
        now = set(self.checked())
        for name in sorted(now - self._before):
            self._store.assign(person_id, name)
        for name in sorted(self._before - now):
            self._store.unassign(person_id, name)
        self._before = now
