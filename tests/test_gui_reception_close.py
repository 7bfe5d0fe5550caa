"""Issue #11 item 10: in reception mode, closing the window needs the administrator password
(Alt+F4, the window manager's close); the operating system ending the app still closes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

from conftest import HAMILTON  # noqa: E402
from faceapp.service import security  # noqa: E402
from test_gui_admin import FAST, PASSWORD, Script, cancel, type_password  # noqa: E402
from test_gui_admin_wiring import make_window  # noqa: E402



@pytest.mark.gui
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_closing_the_window_in_reception_mode_needs_the_password(qtbot, app):
    window, gate = make_window(qtbot, app, reception=True)
    window.show()
    qtbot.waitExposed(window)
    gate.run_dialog = Script(cancel)
    assert not window.close()                        # what Alt+F4 / the close button ask for
    assert window.isVisible() and window.reception and not window.live.closing
    assert len(gate.run_dialog.shown) == 1
    gate.run_dialog = Script(type_password("not it at all"), cancel)
    assert not window.close() and window.isVisible()
    gate.run_dialog = Script(type_password(PASSWORD))
    assert window.close()
    assert not window.isVisible() and window.live.closing


@pytest.mark.gui
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_outside_reception_and_at_os_shutdown_the_window_closes_without_asking(qtbot, app):
    window, gate = make_window(qtbot, app)
    gate.run_dialog = Script()                      # any dialog would fail the test
    window.show()
    assert window.close() and gate.run_dialog.shown == []
    window2, gate2 = make_window(qtbot, app, reception=True)
    gate2.run_dialog = Script()
    window2.show()
    window2.reception_mode.allow_os_quit()          # what the session end (commitDataRequest) does
    assert window2.close() and gate2.run_dialog.shown == []


@pytest.mark.gui
def test_sigterm_closes_a_reception_window_cleanly(home, tmp_path):
    from faceapp.store.db import Store

    with Store(home / "faceapp.db") as s:
        security.set_admin_password(s, PASSWORD, params=FAST)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "faceapp", "-v", "--home", str(home), "--reception",
                             "--camera", str(HAMILTON)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:                    # wait until the window runs its camera
            if "opened video" in line:
                break
        proc.send_signal(signal.SIGTERM)            # what the OS sends at shutdown
        proc.stderr.read()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
