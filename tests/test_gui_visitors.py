"""The Visitors page and the face actions of the Entry log (offscreen Qt), on unknown events
logged from real photos through the real models."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.service.visitors import FaceEventLog, list_visitors  # noqa: E402
from faceapp.store.attendance import AttendanceStore  # noqa: E402

from conftest import person_photos  # noqa: E402
from test_visitors import log_photo  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

PEOPLE = ["Tony_Blair", "Vladimir_Putin", "Jacques_Chirac"]


class RefusingGate:
    """Stands in for a locked window whose password prompt was cancelled."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def require(self, parent, reason: str) -> bool:
        self.asked.append(reason)
        return False


@pytest.fixture
def seen(app):
    """Three photos each of three people logged as unknown (interleaved); the 4th photo held back."""
    events = FaceEventLog(app)
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    photos = {p: person_photos("lfw_krasserm", p) for p in PEOPLE}
    entry_person = {}
    for i in range(3):
        for k, p in enumerate(PEOPLE):
            entry_person[log_photo(app, events, photos[p][i], t0 + timedelta(minutes=10 * i + k))] = p
    return app, entry_person, photos


def visitors_page(qtbot, app, gate=None):
    from faceapp.gui.visitors_page import VisitorsPage

    page = VisitorsPage(app, gate=gate)
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    return page


def finish(qtbot, task) -> None:
    assert task is not None
    qtbot.waitUntil(task.isFinished, timeout=120_000)
    QApplication.processEvents()


def test_visitors_page_shows_each_visitor_with_thumbnail_and_visits(qtbot, seen):
    app, entry_person, _ = seen
    page = visitors_page(qtbot, app)
    rows = [page.model.visitor(r) for r in range(page.model.rowCount())]
    assert len(rows) == 3 and sorted(v.visits for v in rows) == [3, 3, 3]
    for r, v in enumerate(rows):
        assert len({entry_person[e] for e in v.entry_ids}) == 1
        icon = page.model.index(r, 0).data(Qt.ItemDataRole.DecorationRole)
        assert not icon.isNull() and not icon.pixmap(72, 72).isNull()
        assert page.model.index(r, 0).data() == f"Visitor {v.id}" and page.model.index(r, 1).data() == "3"
        assert page.model.index(r, 4).data() == "Main entrance"
    assert "3 visitor(s), 9 visit(s)" in page.status_label.text()
    # Buttons follow the selection: one for Enroll, two or more for Merge.
    assert not page.enroll_button.isEnabled() and not page.merge_button.isEnabled()
    page.select_ids([rows[0].id])
    assert page.enroll_button.isEnabled() and not page.merge_button.isEnabled() and page.forget_button.isEnabled()
    page.select_ids([rows[0].id, rows[1].id])
    assert page.merge_button.isEnabled() and not page.enroll_button.isEnabled()
    # A new unknown event appears without a click (the page polls while visible).
    log_photo(app, FaceEventLog(app), seen[2]["Tony_Blair"][3], datetime.now(timezone.utc))
    page.poll()
    assert sum(page.model.visitor(r).visits for r in range(page.model.rowCount())) == 10


def test_enroll_merge_and_forget_from_the_page(qtbot, seen):
    app, entry_person, photos = seen
    page = visitors_page(qtbot, app)
    by_person = {entry_person[v.entry_ids[0]]: v for v in list_visitors(app)}
    # Enroll Tony Blair's visitor: his past entries are relabelled and he is recognised.
    page.select_ids([by_person["Tony_Blair"].id])
    page.ask_enroll = lambda vid: ("Tony Blair", "E7", None)
    finish(qtbot, page.enroll_selected())
    assert app.store.find_person("Tony Blair").n_photos >= 1
    assert "enrolled as Tony Blair" in page.status_label.text()
    assert page.model.rowCount() == 2
    names = {r["person_name"] for r in app.store.query(
        "SELECT person_name FROM entries WHERE id IN (%s)" % ",".join(map(str, by_person["Tony_Blair"].entry_ids)))}
    assert names == {"Tony Blair"}
    # Merge the other two (as if they were one person), then forget the result.
    a, b = by_person["Vladimir_Putin"].id, by_person["Jacques_Chirac"].id
    page.select_ids([a, b])
    target = page.merge_selected()
    assert target == min(a, b) and page.model.rowCount() == 1 and page.model.visitor(0).visits == 6
    page.select_ids([target])
    page.confirm = lambda title, text: False          # cancelled: nothing happens
    assert page.forget_selected() is None and page.model.rowCount() == 1
    page.confirm = lambda title, text: True
    assert page.forget_selected() == 6
    assert page.model.rowCount() == 0 and app.store.query("SELECT COUNT(*) AS n FROM entry_faces "
                                                          "WHERE visitor_id IS NOT NULL")[0]["n"] == 0


def test_visitor_actions_need_the_administrator(qtbot, seen):
    app, _, _ = seen
    gate = RefusingGate()
    page = visitors_page(qtbot, app, gate=gate)
    ids = [v.id for v in list_visitors(app)]
    page.ask_enroll = lambda vid: pytest.fail("asked for a name without the password")
    page.confirm = lambda title, text: True
    page.select_ids(ids[:1])
    assert page.enroll_selected() is None
    page.select_ids(ids[:2])
    assert page.merge_selected() is None
    assert page.forget_selected() is None
    assert gate.asked == ["enroll a visitor", "merge visitors", "forget visitors"]
    assert [v.id for v in list_visitors(app)] == ids and app.store.list_people() == []


def log_page(qtbot, app, gate=None):
    from faceapp.gui.face_search import EntryFaceActions
    from faceapp.gui.log_page import LogPage

    page = LogPage(app, gate=gate)
    actions = EntryFaceActions(app, page)
    qtbot.addWidget(page)
    page.resize(1100, 650)
    page.show()
    results: list[tuple[str, list]] = []
    actions.show_results = lambda title, hits: results.append((title, hits))
    return page, actions, results


def select_entry(page, entry_id: int) -> None:
    for r in range(page.model.rowCount()):
        if page.model.entry(r).id == entry_id:
            page.table.selectRow(r)
            return
    raise AssertionError(f"entry {entry_id} not shown")


def test_find_this_face_and_a_dropped_photo_search_the_log(qtbot, seen):
    app, entry_person, photos = seen
    page, actions, results = log_page(qtbot, app)
    assert not actions.find_button.isEnabled()
    putin = [e for e, p in entry_person.items() if p == "Vladimir_Putin"]
    select_entry(page, putin[0])
    assert actions.find_button.isEnabled() and actions.wrong_button.isEnabled()
    actions.find_button.click()
    title, hits = results[-1]
    assert str(putin[0]) in title and hits[0].entry.id == putin[0] and {h.entry.id for h in hits} == set(putin)
    # A photo never logged, dropped on the page: the same person's entries.
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photos["Jacques_Chirac"][3]))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, enter)
    assert enter.isAccepted()          # the page takes the photo (its drop filter is installed)
    # Qt delivers the drop itself only during a real drag: hand it to the page's filter as Qt would.
    text = QMimeData()
    text.setText("not a photo")
    assert not actions.eventFilter(page, QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, text,
                                                         Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    assert actions.eventFilter(page, drop) and page.acceptDrops()
    finish(qtbot, actions._task)
    qtbot.waitUntil(lambda: len(results) == 2)
    title, hits = results[-1]
    assert photos["Jacques_Chirac"][3].name in title
    assert {h.entry.id for h in hits} == {e for e, p in entry_person.items() if p == "Jacques_Chirac"}
    # The results window itself shows a snapshot per entry.
    from faceapp.gui.face_search import FaceSearchDialog

    dialog = FaceSearchDialog(app, title, hits)
    qtbot.addWidget(dialog)
    assert dialog.model.rowCount() == len(hits)
    assert not dialog.model.index(0, 0).data(Qt.ItemDataRole.DecorationRole).isNull()


def test_wrong_person_on_an_entry(qtbot, seen):
    app, entry_person, photos = seen
    blair = enroll_files(app, "Tony Blair", photos["Tony_Blair"][4:6])[0]
    page, actions, _ = log_page(qtbot, app)
    entry = next(e for e, p in entry_person.items() if p == "Vladimir_Putin")
    # Pretend the door took Putin for Blair.
    app.store.conn.execute("UPDATE entries SET person_id = ?, person_name = 'Tony Blair', decision = 'granted' "
                           "WHERE id = ?", (blair, entry))
    page.refresh()
    select_entry(page, entry)
    offered = []
    actions.ask_correction = lambda e: offered.append(e.person_name) or (None, True)
    actions.wrong_button.click()
    finish(qtbot, actions._task)
    assert offered == ["Tony Blair"]
    row = AttendanceStore(app.store).entries_by_id([entry])[entry]
    assert row.person_id is None and row.decision == "unknown"
    assert "not Tony Blair" in actions.status.text()
    assert app.store.query("SELECT COUNT(*) AS n FROM negatives WHERE person_id = ?", (blair,))[0]["n"] == 1
    # With the password refused nothing is asked or changed.
    gate = RefusingGate()
    page2, actions2, _ = log_page(qtbot, app, gate=gate)
    select_entry(page2, entry)
    actions2.ask_correction = lambda e: pytest.fail("asked without the password")
    assert actions2.correct_selected() is None and gate.asked == ["correct a logged entry"]
