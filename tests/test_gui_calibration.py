"""The threshold calibration dialog on a gallery of real enrolled photos (offscreen Qt)."""

from __future__ import annotations

import math

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtWidgets import QMainWindow, QWidget  # noqa: E402

from faceapp.core import metrics  # noqa: E402
from faceapp.gui.calibration import (  # noqa: E402
    BASIS_PAIR, BASIS_STRANGER, CalibrationDialog, install_calibration_action,
    open_calibration_dialog)
from faceapp.service.enroll import check_file, save_person  # noqa: E402

from conftest import person_photos  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    # The offscreen platform says this whenever a dialog is shown.
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

LFW = ["Ariel_Sharon", "Arnold_Schwarzenegger", "Colin_Powell", "Donald_Rumsfeld", "George_W_Bush",
       "Gerhard_Schroeder", "Hugo_Chavez", "Jacques_Chirac", "Tony_Blair", "Vladimir_Putin"]


@pytest.fixture(scope="module")
def shots(engine):
    """Quality-checked shots of the first 3 photos of the ten LFW people (embedded once)."""
    out = {}
    for name in LFW:
        got = [check_file(engine, p) for p in person_photos("lfw_krasserm", name)[:3]]
        out[name] = [s for s in got if s.ok]
    return out


def _enroll(app, shots, names):
    for name in names:
        save_person(app, name.replace("_", " "), shots[name], allow_duplicate=True)


class FakeWindow(QWidget):
    """Stands in for the main window: a slider value and its setter."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.threshold = value
        self.moved_to: list[float] = []

    def set_threshold(self, value: float) -> None:
        self.threshold = value
        self.moved_to.append(value)


def test_empty_gallery_explains_what_is_needed(qtbot, app):
    dlg = CalibrationDialog(app)
    qtbot.addWidget(dlg)
    assert dlg.pairs is None
    assert not dlg.apply_button.isEnabled()
    assert "Enroll at least two people" in dlg.warning_label.text()
    assert math.isnan(dlg.apply())


def test_few_people_give_a_proposal_with_a_warning(qtbot, app, shots):
    _enroll(app, shots, LFW[:3])
    dlg = CalibrationDialog(app)
    qtbot.addWidget(dlg)
    p = dlg.pairs
    assert p.n_people == 3 and p.n_templates == sum(len(shots[n]) for n in LFW[:3])
    assert f"{p.genuine.size} same-person pairs" in dlg.summary.text()
    warning = dlg.warning_label.text()
    assert "Too few samples" in warning and "300" in warning and f"there are {p.nearest_other.size}" in warning
    assert dlg.apply_button.isEnabled()
    assert dlg.apply_button.text() == "Set threshold for a false-accept rate of 1 %"


def test_threshold_for_a_pair_false_accept_rate_is_applied(qtbot, app, shots):
    _enroll(app, shots, LFW)
    window = FakeWindow(app.threshold)
    dlg = CalibrationDialog(app, window)
    qtbot.addWidget(window)
    dlg.basis.setCurrentIndex(dlg.basis.findData(BASIS_PAIR))
    dlg.rate.setValue(1.0)
    p = dlg.pairs
    assert p.impostor.size >= 300 and p.genuine.size >= 20
    assert dlg.warning_label.text() == ""   # enough pairs for 1% on ten people
    proposed = dlg.proposed_threshold()
    assert proposed == pytest.approx(metrics.threshold_at_rate(p.impostor, 0.01))
    # The ten LFW people do not look alike: the threshold sits above every same-person pair.
    assert metrics.accept_rates(p.genuine, p.impostor, proposed)[0] == 0.0
    assert f"{proposed:.2f}" in dlg.proposal_label.text()
    with qtbot.waitSignal(dlg.threshold_applied) as sig:
        qtbot.mouseClick(dlg.apply_button, Qt.MouseButton.LeftButton)
    applied = sig.args[0]
    assert applied <= proposed and proposed - applied < 0.01
    assert app.threshold == pytest.approx(applied)
    assert app.store.load_settings().threshold_for(app.model_id) == pytest.approx(applied)
    assert window.moved_to == [applied]
    assert f"Current threshold {applied:.2f}" in dlg.current_label.text()
    # The 1:N basis uses one search per template: 1% of them needs 300, so it warns.
    dlg.basis.setCurrentIndex(dlg.basis.findData(BASIS_STRANGER))
    assert "Too few samples" in dlg.warning_label.text()
    assert dlg.proposed_threshold() == pytest.approx(metrics.threshold_at_rate(p.nearest_other, 0.01))


def test_histograms_are_drawn_on_both_sides_of_the_threshold(qtbot, app, shots):
    _enroll(app, shots, LFW[:6])
    dlg = CalibrationDialog(app)
    qtbot.addWidget(dlg)
    dlg.basis.setCurrentIndex(dlg.basis.findData(BASIS_PAIR))
    view = dlg.view
    view.resize(600, 260)
    image = QImage(view.size(), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    view.render(image)
    assert view.threshold == pytest.approx(app.threshold)

    def columns_with(kind: str) -> list[int]:
        xs = []
        for x in range(0, image.width(), 2):
            for y in range(30, image.height() - 30, 3):
                c = image.pixelColor(x, y)
                r, g, b = c.red(), c.green(), c.blue()
                greenish = g > r + 40 and g > b + 20
                reddish = r > g + 40 and r > b + 40
                if (kind == "genuine" and greenish) or (kind == "impostor" and reddish):
                    xs.append(x)
                    break
        return xs

    green, red = columns_with("genuine"), columns_with("impostor")
    assert green and red
    # Same-person bars lie left of the different-person bars, with the threshold in between.
    assert min(green) < min(red)
    assert max(green) < view.x_of(app.threshold) + 5


def test_menu_action_opens_the_dialog(qtbot, app, shots):
    _enroll(app, shots, LFW[:2])
    window = QMainWindow()
    qtbot.addWidget(window)
    window.menuBar().addMenu("&Models")
    install_calibration_action(window, app)
    action = window.calibration_action
    models_menu = [a.menu() for a in window.menuBar().actions() if a.text() == "&Models"][0]
    assert action in models_menu.actions()
    action.trigger()
    dialogs = window.findChildren(CalibrationDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    dialogs[0].close()
    dlg = open_calibration_dialog(app)
    assert dlg.isVisible() and dlg.pairs.n_people == 2
    with qtbot.waitSignal(dlg.destroyed):   # deletes itself on close
        dlg.close()
