"""The first-run model dialog: installs a real pack from ../shared/models (folder and zip),
refuses damaged files, and can be cancelled, all without a terminal (offscreen Qt)."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

from faceapp.engine.catalog import get_pack  # noqa: E402
from faceapp.engine.installer import verify_pack  # noqa: E402
from faceapp.gui.first_run import ModelSetupDialog, models_missing  # noqa: E402
from faceapp.service.app import App  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]


@pytest.fixture
def bare_app(tmp_path):
    """A fresh data folder without any model installed (the first start)."""
    a = App(tmp_path / "home")
    yield a
    a.close()


def _install(qtbot, dialog, source) -> None:
    dialog.install(source)
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)


def _table_text(dialog) -> str:
    t = dialog.table
    return "\n".join(" | ".join(t.item(r, c).text() for c in range(t.columnCount())) for r in range(t.rowCount()))


def test_explains_packs_and_licences(qtbot, bare_app):
    assert models_missing(bare_app)
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    text = _table_text(dialog)
    assert "buffalo_sc" in text and "opencv" in text
    assert "non-commercial research only" in text and "commercial use allowed" in text
    assert "YuNet: MIT; SFace: Apache-2.0" in text
    assert dialog.selected_pack() == bare_app.settings.pack  # the configured pack is preselected
    assert not dialog.start_button.isEnabled()  # nothing installed yet


def test_installs_from_a_folder_with_progress(qtbot, bare_app, shared_dir):
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    dialog.select_pack("opencv")
    seen = []
    dialog.progress.valueChanged.connect(seen.append)
    with qtbot.waitSignal(dialog.installed, timeout=120_000) as got:
        dialog.install(shared_dir / "models")
    report = got.args[0]
    assert report.pack == "opencv" and all(f.check == "sha256" for f in report.files)
    assert verify_pack("opencv", bare_app.paths.models).ok
    assert bare_app.settings.pack == "opencv"  # the installed pack is the one used
    with App(bare_app.paths.home) as again:
        assert again.settings.pack == "opencv"  # and it is saved
    assert not models_missing(bare_app)
    assert max(seen) > 0  # the bar moved
    assert dialog.start_button.isEnabled()
    assert "Installed 'opencv'" in dialog.status.text()


def test_installs_from_a_zip(qtbot, bare_app, shared_dir, tmp_path):
    pack = get_pack("buffalo_sc")
    archive = tmp_path / "buffalo_sc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for mf in pack.files:
            zf.write(shared_dir / "models" / mf.name, f"buffalo_sc/{mf.name}")
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    dialog.select_pack("buffalo_sc")
    _install(qtbot, dialog, archive)
    assert dialog.report is not None and dialog.report.pack == "buffalo_sc"
    assert verify_pack("buffalo_sc", bare_app.paths.models).ok


def test_a_damaged_file_is_refused_and_nothing_installed(qtbot, bare_app, shared_dir, tmp_path):
    src = tmp_path / "copy"
    src.mkdir()
    pack = get_pack("opencv")
    for mf in pack.files:
        shutil.copy(shared_dir / "models" / mf.name, src / mf.name)
    bad = src / pack.recognizer.name
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content: only the sha256 can tell
    bad.write_bytes(bytes(data))
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    dialog.select_pack("opencv")
    _install(qtbot, dialog, src)
    assert dialog.report is None
    assert "sha256" in dialog.status.text() or "checksum" in dialog.status.text().lower()
    assert not (bare_app.paths.models / "opencv" / pack.recognizer.name).exists()
    assert models_missing(bare_app)
    assert not dialog.start_button.isEnabled()


def test_an_empty_folder_says_what_is_missing(qtbot, bare_app, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    dialog.select_pack("buffalo_sc")
    _install(qtbot, dialog, empty)
    assert "not found" in dialog.status.text()
    assert models_missing(bare_app)


def test_cancel_leaves_nothing(qtbot, bare_app, shared_dir):
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    dialog.select_pack("opencv")
    dialog.install(shared_dir / "models")
    dialog.cancel()  # asked before the first chunk is copied: the installer stops at once
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert dialog.report is None
    assert "cancelled" in dialog.status.text()
    assert models_missing(bare_app)
    pack_dir = bare_app.paths.models / "opencv"
    assert not pack_dir.exists() or not any(pack_dir.glob("*.onnx"))


def test_install_models_menu_entry(qtbot, app, faces_dir):
    from faceapp.gui.main import build_main_window

    window = build_main_window(app, camera=str(faces_dir / "five_celebrity"), start=False)
    qtbot.addWidget(window)
    assert window.install_models_action in window.models_menu.actions()
    assert not models_missing(app)  # the window of an installed data folder: no first-run dialog


def test_the_liveness_pack_is_listed_and_installs_but_does_not_replace_recognition(qtbot, bare_app, shared_dir):
    dialog = ModelSetupDialog(bare_app)
    qtbot.addWidget(dialog)
    assert "minifasnet | " in _table_text(dialog) and "Apache-2.0" in _table_text(dialog)
    dialog.select_pack("minifasnet")
    assert not dialog.download_button.isEnabled()  # no official ONNX download exists
    _install(qtbot, dialog, shared_dir / "models")
    assert dialog.report is not None and dialog.report.pack == "minifasnet"
    assert verify_pack("minifasnet", bare_app.paths.models).ok
    assert bare_app.settings.pack == "buffalo_sc"  # recognition unchanged
    assert models_missing(bare_app)  # a liveness pack alone recognises nobody
    assert not dialog.start_button.isEnabled()
    dialog.select_pack("buffalo_sc")
    assert dialog.download_button.isEnabled()


def test_about_box_lists_the_third_party_notices(qtbot, app, faces_dir):
    from PySide6.QtWidgets import QTextBrowser

    from faceapp.gui.about_notices import licences_folder
    from faceapp.gui.main import build_main_window

    window = build_main_window(app, camera=str(faces_dir / "five_celebrity"), start=False)
    qtbot.addWidget(window)
    dialog = window.show_about()
    qtbot.addWidget(dialog)
    view = dialog.findChild(QTextBrowser, "thirdPartyNotices")
    assert view is not None
    text = view.toPlainText()
    for needle in ("MIT licence", "Qt 6 — LGPL-3.0-only", "can be replaced",
                   "ONNX Runtime — MIT", "OpenCV (opencv-python) — Apache-2.0", "NumPy — BSD-3-Clause",
                   "insightface (code) — MIT", "non-commercial research only", "YuNet: MIT; SFace: Apache-2.0",
                   "minifasnet — Apache-2.0"):
        assert needle in text, needle
    assert (licences_folder() / "LGPL-3.0.txt").is_file()  # the link points at real texts
