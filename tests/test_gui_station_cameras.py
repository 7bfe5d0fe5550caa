"""The station's door cameras in the main window (#16): the Live page shows their grid instead of
the single camera, the Camera ▸ Door cameras… dialog edits the local list and the page switches
without a restart, the menu entry is an administrator action. Real models, the real Hamilton clip
(offscreen Qt; dialogs are driven by code, nothing modal blocks)."""

from __future__ import annotations

import logging
import threading

import cv2
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from conftest import HAMILTON, person_photos  # noqa: E402
from faceapp.capture.sources import ArraySource  # noqa: E402
from faceapp.core.errors import FaceAppError  # noqa: E402
from faceapp.core.settings import Settings  # noqa: E402
from faceapp.gui import door_cameras_dialog  # noqa: E402
from faceapp.gui.camera_grid import CameraGrid  # noqa: E402
from faceapp.gui.door_cameras_dialog import DoorCamerasDialog  # noqa: E402
from faceapp.gui.station_view import door_camera_args  # noqa: E402
from faceapp.service import enroll, security  # noqa: E402
from faceapp.store.attendance import AttendanceStore  # noqa: E402
from faceapp.store.migrations import SITE_SETTINGS  # noqa: E402
from test_gui_admin import FAST, PASSWORD, Script, cancel, type_password  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

WAIT = 120_000  # ms; generous: the machine is shared, nothing here is a timing assert
OBAMA = person_photos("face_recognition_examples", "Barack_Obama")


def open_window(qtbot, app, start=True, **kw):
    from faceapp.gui.main import build_main_window

    # The single camera: a still photo, so a wrongly started single view would show a picture.
    window = build_main_window(app, camera=ArraySource([cv2.imread(str(OBAMA[0]))], loop=True), start=False, **kw)
    qtbot.addWidget(window)
    window.resize(1000, 650)
    window.show()
    if start:
        window.start()
    return window


def station_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "station recognition" or t.name.startswith("camera ")]


def grid_of(window) -> CameraGrid:
    grid = window.stations.grid
    assert isinstance(grid, CameraGrid)
    return grid


def test_door_cameras_setting_is_local_and_validated(caplog):
    """Kept per PC (never replicated to a site), bad entries dropped with a warning, others kept."""
    assert "station_cameras" not in SITE_SETTINGS and "camera" not in SITE_SETTINGS
    with caplog.at_level(logging.WARNING, "faceapp.core.settings"):
        s = Settings.from_dict({"station_cameras": ["0=Front", "no door here", "=Back", 7, "rtsp://h/s?ch=1=Back  door"]})
    assert s.station_cameras == ("0=Front", "rtsp://h/s?ch=1=Back door")
    assert sum("ignoring a door camera" in r.message for r in caplog.records) == 3
    assert Settings.from_dict({"station_cameras": "0=Front"}).station_cameras == ()
    assert Settings.from_dict(s.to_dict()) == s


def test_camera_arguments_of_the_window(app):
    AttendanceStore(app.store).add_door("Front")
    assert door_camera_args(app, None) == (None, ())
    assert door_camera_args(app, ["2"]) == ("2", ())   # one camera without a door: as before
    assert door_camera_args(app, ["rtsp://h/s?channel=1"]) == ("rtsp://h/s?channel=1", ())
    assert door_camera_args(app, ["0=front"]) == (None, ("0=Front",))
    assert door_camera_args(app, ["0=Front", "v.mp4=Front"]) == (None, ("0=Front", "v.mp4=Front"))
    with pytest.raises(FaceAppError, match="not SOURCE=DOOR"):
        door_camera_args(app, ["0=Front", "1"])
    with pytest.raises(FaceAppError, match="no door called 'Back'"):
        door_camera_args(app, ["0=Front", "1=Back"])


def test_main_window_shows_the_door_cameras_grid(qtbot, app, tmp_path, monkeypatch):
    from faceapp.service import stations

    built_in = []   # the threads the door pipelines are built in (the gallery loads there)

    class Pipeline(stations.Pipeline):
        def __init__(self, *a, **kw) -> None:
            built_in.append(threading.current_thread().name)
            super().__init__(*a, **kw)

    monkeypatch.setattr(stations, "Pipeline", Pipeline)
    enroll.enroll_files(app, "Lin-Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    app.update_settings(station_cameras=(f"{HAMILTON}=Main", f"{tmp_path / 'gone.mp4'}=Back"))
    window = open_window(qtbot, app, start=False)
    logged = []
    window.eventsReady.connect(logged.extend)
    window.start()
    grid = grid_of(window)
    # The grid replaces the single view, whose camera and recognition never start.
    assert grid.parent() is window.live_page and not window.view.isVisible()
    assert window.live.capture_thread is None and window.live.recognition_thread is None
    main, back = grid.tiles
    assert (main.door, back.door) == ("Main", "Back")
    qtbot.waitUntil(lambda: main.view.image is not None and back.view.message is not None, timeout=WAIT)
    assert main.header.text().startswith("Main — live")
    assert back.header.text() == "Back — camera unavailable"
    assert "unavailable" in back.view.message and "not found" in back.view.message
    qtbot.waitUntil(lambda: bool(main.view.faces), timeout=WAIT)   # plates on the clip's picture
    assert built_in == ["station recognition"] * 2   # never in the GUI thread
    seen: set[str] = set()
    qtbot.waitUntil(lambda: seen.update(main.view.last_labels) or any(t.startswith("Lin-Manuel Miranda") for t in seen),
                    timeout=WAIT)
    qtbot.waitUntil(lambda: window.source_label.text() == "2 cameras  ·  1 live  ·  1 unavailable", timeout=WAIT)
    assert window.models_label.text().startswith("models: ") and "recognition" in window.stats_label.text()
    # Entries the door cameras log reach the window (alerts, presence), with their door.
    qtbot.waitUntil(lambda: any(e.door == "Main" for e in logged), timeout=WAIT)
    # The threshold slider applies to every door camera.
    window.set_threshold(0.33)
    assert all(p.threshold == pytest.approx(0.33, abs=0.006) for p in grid.station.pipelines)
    # The grid fills the Live page (above the threshold bar).
    assert grid.width() == window.live_page.width()
    # Click enlarges inside the main window; again, or Esc, returns to the grid.
    qtbot.mouseClick(back, Qt.MouseButton.LeftButton)
    assert grid.enlarged == 1 and back.isVisible() and not main.isVisible()
    qtbot.mouseClick(back, Qt.MouseButton.LeftButton)
    assert grid.enlarged is None and main.isVisible() and back.isVisible()
    qtbot.mouseClick(main, Qt.MouseButton.LeftButton)
    assert main.width() > back.width() or not back.isVisible()
    qtbot.keyClick(grid, Qt.Key.Key_Escape)
    assert grid.enlarged is None and back.isVisible()
    # Reception mode: full screen with the grid, large names, the exit button over the grid.
    window.set_reception_mode(True, save=False)
    assert window.tabs.currentWidget() is window.live_page and grid.isVisible()
    assert window.leave_button.parent() is grid and window.leave_button.isVisible()
    assert all(t.view._large for t in grid.tiles)
    window.reception_mode.allow_os_quit()
    window.close()
    assert not station_threads()
    assert not any(f._thread.is_alive() for f in grid.station.feeds) and not grid.runner.alive


def test_dialog_adds_refuses_and_the_page_switches(qtbot, app, tmp_path, monkeypatch):
    doors = AttendanceStore(app.store)
    doors.add_door("Front")
    doors.add_door("Back")
    window = open_window(qtbot, app)
    assert window.stations.grid is None and window.view.isVisible()
    qtbot.waitUntil(lambda: window.live.capture_thread is not None and window.view.image is not None, timeout=WAIT)
    audit_before = app.store.query("SELECT count(*) AS n FROM audit")[0]["n"]

    def bad_entries(d: DoorCamerasDialog) -> None:
        assert sorted(d.doors) == ["Back", "Front"]
        for kind, source, door, line in (
                ("Webcam", "", "Front", "Give the webcam's number (0 is the first camera)."),
                ("Webcam", "zero", "Front", "'zero' is not a webcam number (0 to 63)."),
                ("Video file", str(tmp_path / "nothing.mp4"), "Front", f"No video file at {tmp_path / 'nothing.mp4'}."),
                ("Stream URL", "ftp://cam/1", "Front", "The address must start with rtsp://, http:// or https://."),
                ("Video file", str(HAMILTON), "", "Choose the door this camera guards."),
                ("Video file", str(HAMILTON), "Side", "No door called 'Side' (doors: Back, Front); add it on the Doors page first."),
        ):
            d.kind.setCurrentText(kind)
            d.source.setText(source)
            d.door.setCurrentText(door)
            assert not (d.add() if not source else d.save())   # a typed source is added on Save
            assert d.message.text() == line and "\n" not in line
            assert d.cameras() == ()
        d.reject()

    window.door_cameras.run_dialog = Script(bad_entries)
    assert not window.door_cameras.open()
    assert app.settings.station_cameras == () and app.store.load_settings().station_cameras == ()
    assert app.store.query("SELECT count(*) AS n FROM audit")[0]["n"] == audit_before
    assert window.stations.grid is None and window.live.capture_thread is not None

    def add_two(d: DoorCamerasDialog) -> None:
        monkeypatch.setattr(door_cameras_dialog, "ask_video_path", lambda parent: str(HAMILTON))
        d.browse()
        assert d.kind.currentText() == "Video file" and d.source.text() == str(HAMILTON)
        d.door.setCurrentText("front")
        assert d.add() and d.cameras() == (f"{HAMILTON}=Front",) and d.source.text() == ""
        d.kind.setCurrentText("Video file")
        d.source.setText(str(HAMILTON))   # typed, not added: Save adds it
        d.door.setCurrentText("Back")
        assert d.save()

    window.door_cameras.run_dialog = Script(add_two)
    assert window.door_cameras.open()
    assert app.store.load_settings().station_cameras == (f"{HAMILTON}=Front", f"{HAMILTON}=Back")
    grid = grid_of(window)
    assert [t.door for t in grid.tiles] == ["Front", "Back"] and not window.view.isVisible()
    # The single view stopped: only the station runs now.
    assert window.live.capture_thread is None and window.live.recognition_thread is None
    assert not any(a.isEnabled() for a in window.camera_menus.source_actions)
    qtbot.waitUntil(lambda: all(t.view.image is not None for t in grid.tiles), timeout=WAIT)
    # Camera ▸ Restart in grid mode: every door camera again; the single camera stays off.
    started = []
    with monkeypatch.context() as m:
        m.setattr(window.live, "_start_capture", lambda: started.append("capture"))
        window.restart_action.trigger()
    assert started == []   # not even for a moment
    assert window.stations.grid is not grid and not grid.runner.alive
    assert window.live.capture_thread is None and window.live.recognition_thread is None
    grid = grid_of(window)
    qtbot.waitUntil(lambda: all(t.view.image is not None for t in grid.tiles), timeout=WAIT)

    def remove_all(d: DoorCamerasDialog) -> None:
        assert d.cameras() == (f"{HAMILTON}=Front", f"{HAMILTON}=Back")
        while d.list.count():
            d.list.setCurrentRow(0)
            d.remove_selected()
        assert d.save()

    window.door_cameras.run_dialog = Script(remove_all)
    assert window.door_cameras.open()
    assert app.store.load_settings().station_cameras == ()
    assert window.stations.grid is None and window.view.isVisible()
    assert not grid.runner.alive and not any(f._thread.is_alive() for f in grid.station.feeds)
    assert window.live.capture_thread is not None and window.live.recognition_thread is not None
    assert all(a.isEnabled() for a in window.camera_menus.source_actions)
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=WAIT)
    window.close()
    assert not station_threads()


def test_door_cameras_action_asks_for_the_password(qtbot, app, monkeypatch):
    window = open_window(qtbot, app, start=False)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    gate = window.admin_gate
    assert not gate.unlocked
    action = window.door_cameras.action
    assert action in window.camera_menu.actions() and action.text() == "&Door cameras…"
    shown = []
    window.door_cameras.run_dialog = lambda d: shown.append(d) or QDialog.DialogCode.Rejected
    gate.run_dialog = Script(cancel)
    action.trigger()
    assert len(gate.run_dialog.shown) == 1 and shown == []   # refused: no dialog
    gate.run_dialog = Script(type_password(PASSWORD))
    action.trigger()
    assert len(shown) == 1 and isinstance(shown[0], DoorCamerasDialog)
    window.set_reception_mode(True, save=False)
    assert not action.isEnabled()
    window.set_reception_mode(False, save=False)
    window.shutdown()


def test_a_door_camera_password_stays_out_of_the_settings_and_audit(app):
    url = "rtsp://guard:s3cret-pw@10.0.0.7/stream1"
    app.update_settings(station_cameras=(f"{url}=Front", "0=Back"))
    stored = app.store.load_settings().station_cameras
    assert stored[1] == "0=Back" and "s3cret-pw" not in stored[0] and stored[0].endswith("=Front")
    assert "s3cret-pw" not in str(app.store.query("SELECT details FROM audit"))
    source = stored[0].rpartition("=")[0]
    assert app.camera_spec(source) == url   # the window opens the real address


def test_long_door_names_do_not_widen_the_grid(qtbot, app, tmp_path):
    from faceapp.service.stations import CameraSpec, Station

    long_door = "The loading dock behind the north warehouse, second gate on the left " * 3
    station = Station(app, [CameraSpec(str(tmp_path / f"cam{i}.mp4"), f"{long_door}{i}") for i in range(4)],
                      log_entries=False)
    grid = CameraGrid(station, start=False)
    qtbot.addWidget(grid)
    grid.refresh()
    assert grid.tiles[0].header.text().startswith("The loading dock")
    assert grid.minimumSizeHint().width() < 600   # the headers elide; tiles shrink to 160 px pictures


def test_a_door_camera_of_a_removed_door_is_left_out(qtbot, app, tmp_path):
    doors = AttendanceStore(app.store)
    doors.add_door("Front")
    doors.add_door("Side")
    doors.add_door("Other")   # with no door at all any name goes (as for `faceapp watch`)
    app.update_settings(station_cameras=(f"{HAMILTON}=Front", f"{tmp_path / 'x.mp4'}=Side"))
    doors.remove_door("Side")
    window = open_window(qtbot, app)
    grid = grid_of(window)
    assert [t.door for t in grid.tiles] == ["Front"]
    qtbot.waitUntil(lambda: "left out" in window.source_label.text(), timeout=WAIT)
    assert "no door called 'Side'" in window.source_label.text()
    doors.remove_door("Front")   # now none is left: the single view, and a line saying why
    window.stations.apply()
    assert window.stations.grid is None and window.live.capture_thread is not None
    assert "Door cameras left out" in window.statusBar().currentMessage()
    window.close()
    assert not station_threads()
