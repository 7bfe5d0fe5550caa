"""The station's camera grid (#16) under pytest-qt: one tile per door with its picture, plates and
status, a missing camera shown as unavailable while the others run, click to enlarge and back."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from conftest import HAMILTON, person_photos
from faceapp.gui.camera_grid import CameraGrid
from faceapp.service import enroll
from faceapp.service.stations import CameraSpec, Station
from faceapp.store.attendance import AttendanceStore

pytestmark = pytest.mark.gui


def test_grid_shows_each_door_and_enlarges_on_click(qtbot, app, tmp_path):
    enroll.enroll_files(app, "Lin-Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    station = Station(app, [CameraSpec(str(HAMILTON), "Main"), CameraSpec(str(tmp_path / "gone.mp4"), "Back")],
                      log_entries=False)
    grid = CameraGrid(station)
    qtbot.addWidget(grid)
    grid.resize(900, 500)
    grid.show()
    try:
        main, back = grid.tiles
        qtbot.waitUntil(lambda: main.view.image is not None and back.view.message is not None, timeout=120_000)
        assert main.header.text().startswith("Main — live")
        assert back.header.text() == "Back — camera unavailable" and "not found" in back.header.toolTip()
        assert "unavailable" in back.view.message and "not found" in back.view.message
        # Faces get plates on the picture of the camera that sees them.
        qtbot.waitUntil(lambda: bool(main.view.faces), timeout=120_000)
        # Click enlarges one camera; clicking it again returns to the grid.
        qtbot.mouseClick(main, Qt.MouseButton.LeftButton)
        assert grid.enlarged == 0 and main.isVisible() and not back.isVisible()
        grid.refresh()
        assert main.header.text().endswith("click or Esc: all cameras")   # the way back is shown
        qtbot.mouseClick(main, Qt.MouseButton.LeftButton)
        assert grid.enlarged is None and main.isVisible() and back.isVisible()
        grid.refresh()
        assert "Esc" not in main.header.text()
        qtbot.mouseClick(back, Qt.MouseButton.LeftButton)
        qtbot.keyClick(grid, Qt.Key.Key_Escape)
        assert grid.enlarged is None and main.isVisible()
    finally:
        grid.stop()
    assert not any(f._thread.is_alive() for f in station.feeds)


def test_watch_grid_hands_on_every_logged_entry_and_closes_after_its_seconds(qtbot, app):
    """`faceapp watch --camera ... --grid [--seconds N]`: the bare grid window passes each logged
    entry on (the CLI prints them, as plain `watch` does) and keeps none of them."""
    from faceapp.gui.camera_grid import run_grid

    enroll.enroll_files(app, "Lin-Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    station = Station(app, [CameraSpec(str(HAMILTON), "Main")], log_entries=True)
    seen = []
    assert run_grid(station, on_event=seen.append, seconds=15) == 0
    logged = AttendanceStore(app.store).entries()
    assert logged and {e.id for e in logged} == {ev.entry_id for ev in seen}
    assert "Lin-Manuel Miranda" in {ev.name for ev in seen}
    assert station.take_events() == [] and not any(f._thread.is_alive() for f in station.feeds)
