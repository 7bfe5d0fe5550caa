"""The window on a station (issue #10): File > Site..., the site state in the status bar, the
People page following another station's enrollment, offline shown when the site goes away."""

from __future__ import annotations

import subprocess
import sys

import cv2
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from conftest import FACES  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from faceapp.capture.sources import ArraySource  # noqa: E402
from pg_cluster import pg_cluster, pg_db  # noqa: E402,F401 (fixtures)

pytestmark = [pytest.mark.gui, pytest.mark.slow,
              pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]
LIN = FACES / "face_recognition_examples" / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png"


def test_window_on_a_station_shows_the_site_and_follows_it(qtbot, app, tmp_path, models_dir, pg_cluster, pg_db):
    from faceapp.gui.main import build_main_window
    from faceapp.gui.site_dialog import SiteDialog
    from faceapp.service.site import join_site

    other = tmp_path / "desk"
    other.mkdir()
    (other / "models").symlink_to(models_dir, target_is_directory=True)
    url = pg_cluster.url(pg_db)
    subprocess.run([sys.executable, "-m", "faceapp", "--home", str(other), "site", "create", url,
                    "--import-local", "--station", "Desk"], check=True, capture_output=True)
    join_site(app, url, station="Door 1")

    window = build_main_window(app, camera=ArraySource([cv2.imread(str(LIN))]), start=False)
    qtbot.addWidget(window)
    label = window.findChild(QLabel, "siteStatus")
    qtbot.waitUntil(lambda: label.text() == "site: connected", timeout=30000)
    assert "Site…" in [a.text().replace("&", "") for a in window.file_menu.actions()]

    dialog = SiteDialog(window.site, lambda reason: True, window)
    qtbot.addWidget(dialog)
    assert "Door 1" in dialog.state.text() and "site: connected" in dialog.state.text()
    assert dialog.leave_button.isEnabled() and not dialog.join_button.isEnabled()
    assert pg_cluster_password_not_in(dialog.state.text())

    # Another station enrolls: the People page shows the person without any click here.
    subprocess.run([sys.executable, "-m", "faceapp", "--home", str(other), "enroll", "Lin-Manuel Miranda",
                    str(LIN)], check=True, capture_output=True)
    people = window.page("People")
    qtbot.waitUntil(lambda: "Lin-Manuel Miranda" in [p.name for p in app.store.list_people()], timeout=60000)
    qtbot.waitUntil(lambda: people.table.rowCount() == 1, timeout=30000)

    pg_cluster.stop("fast")
    try:
        qtbot.waitUntil(lambda: label.text().startswith("site: offline since"), timeout=60000)
        dialog.refresh()
        assert "offline since" in dialog.state.text()
    finally:
        pg_cluster.start()
    qtbot.waitUntil(lambda: label.text() == "site: connected", timeout=60000)
    window.close()
    assert not window.site.sync.active


def pg_cluster_password_not_in(text: str) -> bool:
    from pg_cluster import SUPERUSER_PASSWORD

    return SUPERUSER_PASSWORD not in text
