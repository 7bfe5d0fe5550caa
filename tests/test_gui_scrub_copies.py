"""Deleting a person in the window offers to remove them from the safety copies that still hold
them (issue #11 item 6), as `people remove` does on a terminal."""

from __future__ import annotations

import sqlite3

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from faceapp.gui import people_page  # noqa: E402
from faceapp.gui.people_page import DeleteChoice, PeoplePage  # noqa: E402
from faceapp.service.app import App  # noqa: E402
from faceapp.store.audit import AuditLog  # noqa: E402
from test_hardening import _crop_bytes, _two_safety_copies, enrolled, enrolled_db  # noqa: E402,F401

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]


@pytest.mark.parametrize("accept", [True, False])
def test_deleting_in_the_window_offers_to_scrub_the_safety_copies(qtbot, enrolled, engine, tmp_path, monkeypatch,
                                                                   accept):
    home = enrolled
    crops = _crop_bytes(home / "faceapp.db", 2)
    copies = _two_safety_copies(home, tmp_path)
    offers = []
    monkeypatch.setattr(people_page, "ask_delete", lambda parent, summary: DeleteChoice(remove_entries=True))
    monkeypatch.setattr(people_page, "ask_scrub",
                        lambda parent, name, n, folder: offers.append((name, n, folder)) or accept)
    with App(home, engine=engine) as app:
        page = PeoplePage(app, gate=None)
        qtbot.addWidget(page)
        page.refresh()
        ariel = app.store.find_person("Ariel Sharon")
        page.select_person(ariel.id)
        assert page.delete()
        assert offers == [("Ariel Sharon", 2, str(home / "backups"))]
        actions = [r.action for r in AuditLog(app.store).records()]
    for copy in copies:
        data = copy.read_bytes()
        assert any(c in data for c in crops) != accept
        conn = sqlite3.connect(copy)
        try:
            held = conn.execute("SELECT COUNT(*) FROM people WHERE id = 2").fetchone()[0]
        finally:
            conn.close()
        assert held == (0 if accept else 1)
    assert ("person.scrub_copies" in actions) == accept
