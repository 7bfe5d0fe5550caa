"""Threshold calibration from the enrolled gallery itself.

Every pair of templates of the same person is a "same person" distance; every template
compared with the nearest template of anybody else is what a stranger who looks like that
person would score (the false accepts of a 1:N search), and every pair of different people is
the plain 1:1 false-accept sample. Both histograms are drawn with the current threshold, and
one button sets the threshold for a chosen false-accept rate. The estimate is only as good
as the number of samples behind it; the dialog says how many there are and warns when
they are too few.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from faceapp.core import metrics
from faceapp.core.matcher import Gallery
from faceapp.gui.admin import admin_allowed

log = logging.getLogger(__name__)

GENUINE_COLOR = "#22b35e"
IMPOSTOR_COLOR = "#e0392b"
AXIS_MAX = 1.2          # same range as the main window's slider
BINS = 48
MIN_GENUINE_PAIRS = 20  # fewer same-person pairs than this say little about false rejects

BASIS_STRANGER = "stranger"
BASIS_PAIR = "pair"


class HistogramView(QWidget):
    """Same-person and different-person distance histograms with threshold markers (QPainter)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(420, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._genuine = np.zeros(BINS)
        self._impostor = np.zeros(BINS)
        self.threshold = math.nan
        self.proposed = math.nan
        self.impostor_label = "different people"

    def sizeHint(self) -> QSize:
        return QSize(560, 260)

    def set_data(self, genuine: np.ndarray, impostor: np.ndarray, impostor_label: str) -> None:
        # Each histogram is normalised to its own peak: the classes differ in size by orders of magnitude.
        self._genuine = metrics.histogram(genuine, BINS, 0.0, AXIS_MAX)[0].astype(float)
        self._impostor = metrics.histogram(impostor, BINS, 0.0, AXIS_MAX)[0].astype(float)
        self.impostor_label = impostor_label
        self.update()

    def set_markers(self, threshold: float, proposed: float = math.nan) -> None:
        self.threshold = threshold
        self.proposed = proposed
        self.update()

    def _plot_rect(self) -> QRectF:
        return QRectF(10, 24, max(10.0, self.width() - 20.0), max(10.0, self.height() - 48.0))

    def x_of(self, distance: float) -> float:
        """Widget x of a distance (for tests and markers)."""
        r = self._plot_rect()
        return r.left() + r.width() * min(AXIS_MAX, max(0.0, distance)) / AXIS_MAX

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.fillRect(self.rect(), self.palette().base())
            r = self._plot_rect()
            bw = r.width() / BINS
            for counts, color in ((self._impostor, IMPOSTOR_COLOR), (self._genuine, GENUINE_COLOR)):
                peak = counts.max() if counts.size and counts.max() > 0 else 1.0
                c = QColor(color)
                c.setAlpha(150)
                for i, n in enumerate(counts):
                    if n <= 0:
                        continue
                    h = max(1.0, r.height() * n / peak)
                    p.fillRect(QRectF(r.left() + i * bw, r.bottom() - h, bw - 1, h), c)
            text = self.palette().text().color()
            p.setPen(QPen(text, 1))
            p.drawLine(QPointF(r.left(), r.bottom()), QPointF(r.right(), r.bottom()))
            font = QFont(self.font())
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            p.setFont(font)
            for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2):
                x = self.x_of(tick)
                p.drawLine(QPointF(x, r.bottom()), QPointF(x, r.bottom() + 4))
                p.drawText(QRectF(x - 20, r.bottom() + 5, 40, 16), Qt.AlignmentFlag.AlignHCenter, f"{tick:.1f}")
            legend = [(GENUINE_COLOR, "same person"), (IMPOSTOR_COLOR, self.impostor_label)]
            lx = r.left() + 4
            for color, label in legend:
                p.fillRect(QRectF(lx, 6, 10, 10), QColor(color))
                p.setPen(text)
                p.drawText(QPointF(lx + 14, 15), label)
                lx += 24 + p.fontMetrics().horizontalAdvance(label)
            for value, style, label in ((self.threshold, Qt.PenStyle.SolidLine, "now"),
                                        (self.proposed, Qt.PenStyle.DashLine, "proposed")):
                if not math.isfinite(value):
                    continue
                x = self.x_of(value)
                p.setPen(QPen(text, 2, style))
                p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
                # Each label on the side away from the other marker, so close markers never overlap.
                other = self.proposed if label == "now" else self.threshold
                caption = f"{label} {value:.2f}"
                y = r.top() + (12 if label == "now" else 26)
                if math.isfinite(other) and other > value:
                    x -= 3 + p.fontMetrics().horizontalAdvance(caption)
                else:
                    x += 3
                p.drawText(QPointF(x, y), caption)
        finally:
            p.end()


class CalibrationDialog(QDialog):
    """Histograms of the gallery's distances and "set threshold for a false-accept rate of X %".

    ``threshold_applied`` is emitted with the new value after it was saved."""

    threshold_applied = Signal(float)

    def __init__(self, app, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.setWindowTitle("Calibrate the threshold")
        self.pairs: metrics.PairDistances | None = None
        # Per basis: impostor distances sorted once, since every rate step needs a quantile.
        self._sorted: dict[str, np.ndarray] = {}
        self._current = math.nan  # the threshold in use when last shown

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.view = HistogramView(self)
        self.current_label = QLabel()
        self.current_label.setWordWrap(True)

        self.basis = QComboBox()
        self.basis.addItem("a stranger is taken for someone enrolled (1:N search)", BASIS_STRANGER)
        self.basis.addItem("two photos of different people are called the same (1:1)", BASIS_PAIR)
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.01, 50.0)
        self.rate.setDecimals(2)
        self.rate.setSingleStep(0.5)
        self.rate.setValue(1.0)
        self.rate.setSuffix(" %")
        self.apply_button = QPushButton()
        self.apply_button.setDefault(True)
        self.proposal_label = QLabel()
        self.proposal_label.setWordWrap(True)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #c0392b;")

        row = QHBoxLayout()
        row.addWidget(QLabel("False accept:"))
        row.addWidget(self.basis, 1)
        row.addWidget(self.rate)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.current_label)
        layout.addLayout(row)
        layout.addWidget(self.proposal_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(buttons)

        # The distances depend on the basis only; the rate just picks a point on them.
        self.basis.currentIndexChanged.connect(self._show_data)
        self.rate.valueChanged.connect(self._show_proposal)
        self.apply_button.clicked.connect(self.apply)
        self.reload()

    # -- data --------------------------------------------------------------------------------
    def current_threshold(self) -> float:
        """The threshold in use: the main window's slider if there is one, else the saved value."""
        parent = self.parent()
        value = getattr(parent, "threshold", None)
        return float(value) if isinstance(value, (int, float)) else float(self.app.threshold)

    def reload(self) -> None:
        """Recompute the distances from the current gallery."""
        gallery: Gallery = self.app.gallery()
        if gallery.size >= 2:
            self.pairs = metrics.gallery_pair_distances(gallery.embeddings, gallery.row_person)
        else:
            self.pairs = None
        self._sorted = {}
        self._show_data()

    def _impostor(self) -> np.ndarray:
        if self.pairs is None:
            return np.zeros(0)
        return self.pairs.nearest_other if self.basis.currentData() == BASIS_STRANGER else self.pairs.impostor

    def _impostor_sorted(self) -> np.ndarray:
        basis = self.basis.currentData()
        got = self._sorted.get(basis)
        if got is None:
            got = self._sorted[basis] = np.sort(np.asarray(self._impostor(), np.float64).reshape(-1))
        return got

    @property
    def target_rate(self) -> float:
        return self.rate.value() / 100.0

    def proposed_threshold(self) -> float:
        """Threshold giving at most the chosen false-accept rate on this gallery (nan if no data)."""
        # threshold_at_rate sorts its input again (core.metrics has no sorted-input variant);
        # input already in order is its cheapest case.
        t = metrics.threshold_at_rate(self._impostor_sorted(), self.target_rate)
        return min(AXIS_MAX, t) if math.isfinite(t) else math.nan

    def sample_warning(self) -> str:
        """Why the estimate is shaky ('' when there are enough samples)."""
        if self.pairs is None or self.pairs.n_people < 2:
            return "Enroll at least two people (one of them with two or more photos) to calibrate."
        problems = []
        n_imp = self._impostor().size
        need = metrics.min_samples_for_rate(self.target_rate)
        if n_imp < need:
            problems.append(f"a rate of {self.rate.value():g} % needs about {need} {self._impostor_noun()} "
                            f"and there are {n_imp}")
        if self.pairs.genuine.size < MIN_GENUINE_PAIRS:
            problems.append(f"only {self.pairs.genuine.size} same-person pairs (photos of the same person): "
                            f"at least {MIN_GENUINE_PAIRS} are needed to see how many true matches a threshold loses")
        if not problems:
            return ""
        return "Too few samples for a firm estimate: " + "; ".join(problems) + \
            ". Enroll more people, and more photos per person."

    # -- display ------------------------------------------------------------------------------
    def _show_data(self) -> None:
        """What depends on the distances of the chosen basis: summary and histograms; then the rest."""
        stranger = self.basis.currentData() == BASIS_STRANGER
        pd = self.pairs
        if pd is None:
            self.summary.setText("Nobody with enough photos is enrolled yet.")
            self.view.set_data(np.zeros(0), np.zeros(0), "different people")
        else:
            sampled = " (sampled)" if pd.sampled else ""
            self.summary.setText(
                f"{pd.n_people} people, {pd.n_templates} photos enrolled for {self.app.model_id}: "
                f"{pd.genuine.size} same-person pairs, {pd.impostor.size} different-person pairs{sampled}, "
                f"{pd.nearest_other.size} stranger searches (each photo against everybody else).")
            label = "stranger vs nearest other person" if stranger else "different people"
            self.view.set_data(pd.genuine, self._impostor(), label)
        self._show_current()
        self._show_proposal()

    def _show_current(self) -> None:
        """The line about the threshold in use (read here, so its marker and line agree)."""
        current = self._current = self.current_threshold()
        pd = self.pairs
        if pd is None:
            self.current_label.setText(f"Current threshold: {current:.2f}")
            return
        imp = self._impostor()
        frr, far = metrics.accept_rates(pd.genuine, imp, current)
        self.current_label.setText(
            f"Current threshold {current:.2f}: {_pct(frr)} of same-person pairs would be rejected, "
            f"{_pct(far)} of the {imp.size} {self._impostor_noun()} accepted.")

    def _show_proposal(self) -> None:
        """What depends on the chosen rate: the proposal, its marker, the warning and the button."""
        self.apply_button.setText(f"Set threshold for a false-accept rate of {self.rate.value():g} %")
        self.warning_label.setText(self.sample_warning())
        pd = self.pairs
        if pd is None:
            self.view.set_markers(self._current)
            self.proposal_label.setText("")
            self.apply_button.setEnabled(False)
            return
        t = self.proposed_threshold()
        self.view.set_markers(self._current, t)
        if math.isfinite(t):
            imp = self._impostor()
            frr_t, far_t = metrics.accept_rates(pd.genuine, imp, t)
            self.proposal_label.setText(
                f"Proposed threshold {t:.2f}: false accepts {_pct(far_t)}, same-person pairs rejected {_pct(frr_t)}. "
                f"Based on {imp.size} {self._impostor_noun()} and {pd.genuine.size} same-person pairs.")
        else:
            self.proposal_label.setText("No different-person distances to estimate from.")
        self.apply_button.setEnabled(math.isfinite(t))

    def _impostor_noun(self) -> str:
        return "stranger searches" if self.basis.currentData() == BASIS_STRANGER else "different-person pairs"

    def apply(self) -> float:
        """Save the proposed threshold (and move the main window's slider). Returns it (nan: nothing done)."""
        t = self.proposed_threshold()
        if not math.isfinite(t):
            return t
        if not admin_allowed(self, "set the threshold"):
            return math.nan
        t = round(t, 2) if round(t, 2) <= t else math.floor(t * 100) / 100.0  # never looser than proposed
        self.app.set_threshold(t)
        setter = getattr(self.parent(), "set_threshold", None)
        if callable(setter):
            setter(t)
        log.info("threshold for %s set to %.2f for a false-accept rate of %g %%", self.app.model_id, t,
                 self.rate.value())
        self.threshold_applied.emit(t)
        self._show_current()
        self._show_proposal()  # its marker of the threshold in use moved
        return t


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def open_calibration_dialog(app, parent: QWidget | None = None) -> CalibrationDialog:
    """Show the (non-modal) calibration dialog and return it."""
    dialog = CalibrationDialog(app, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def install_calibration_action(window, app) -> None:
    """Add "Calibrate threshold…" to the main window's Models menu (an admin action)."""
    from PySide6.QtGui import QAction

    menu = getattr(window, "models_menu", None)
    if menu is None:  # a window other than MainWindow (tests): its own Models menu, if any
        menu = next((a.menu() for a in window.menuBar().actions()
                     if a.menu() is not None and a.text().replace("&", "") == "Models"), None)
    if menu is None:
        menu = window.menuBar().addMenu("&Models")
    action = QAction("&Calibrate threshold…", window)
    action.triggered.connect(lambda: open_calibration_dialog(app, window))
    menu.addAction(action)
    if hasattr(window, "add_admin_action"):
        window.add_admin_action(action)
    window.calibration_action = action
