"""The match-threshold bar under the live picture: a slider, its value and a hint.

While the administrator gate is locked, a drag moves only the handle; the password is asked
once, on release, about the value released at ("set the match threshold to 0.70 (now 0.88)").
Refused, the handle goes back to the saved value. Keys, wheel and clicks on the groove ask
before their step is applied. Unlocked, the slider previews at once and saves shortly after."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QWidget

from faceapp.gui.live_view import format_distance
from faceapp.service.app import App

log = logging.getLogger(__name__)

SLIDER_MAX = 1.20  # user distance scale: 0 identical ... ~1 unrelated
SLIDER_STEPS = 100  # slider units per 1.0 of distance: a step of 0.01
SAVE_DELAY_MS = 600


class ThresholdBar(QWidget):
    """Slider + value label. ``allowed(reason)`` asks the gate; ``is_locked()`` says whether it
    would ask. ``thresholdChanged`` carries every value to preview (not yet saved)."""

    thresholdChanged = Signal(float)

    def __init__(self, app: App, allowed: Callable[[str], bool], is_locked: Callable[[], bool],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self._allowed = allowed
        self._is_locked = is_locked
        self._asking = False
        self.setObjectName("adminBar")
        # A QWidget subclass paints the stylesheet's dark background only with this attribute;
        # without it the bar's light text sits on the light window background, unreadable.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        bar = QHBoxLayout(self)
        bar.setContentsMargins(12, 6, 12, 6)
        title = QLabel("Match threshold", self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, round(SLIDER_MAX * SLIDER_STEPS))
        self.slider.setSingleStep(1)
        self.slider.setPageStep(5)
        self.slider.setToolTip(
            "A face is recognised when its distance to an enrolled person is at most this value "
            "(0 = identical, about 1 = unrelated). Lower is stricter.")
        self.label = QLabel(self)
        self.label.setObjectName("thresholdValue")
        self.label.setMinimumWidth(48)
        hint = QLabel("known if distance ≤ threshold; lower = stricter", self)
        hint.setObjectName("hint")
        bar.addWidget(title)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.label)
        bar.addSpacing(12)
        bar.addWidget(hint)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)
        self._set(app.threshold)
        self.slider.valueChanged.connect(self._on_value)
        # actionTriggered comes only from the user (mouse, keys, wheel), before the value changes.
        self.slider.actionTriggered.connect(self._on_action)
        self.slider.sliderPressed.connect(self._on_pressed)
        self.slider.sliderReleased.connect(self._on_released)

    @property
    def value(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_value(self, value: float) -> None:
        """Move the slider from code (previewed at once, saved shortly after)."""
        self._set(value, notify=True)

    def _set(self, value: float, notify: bool = False) -> None:
        units = round(min(SLIDER_MAX, max(0.0, float(value))) * SLIDER_STEPS)
        if not notify:
            self.slider.blockSignals(True)
        self.slider.setValue(units)
        self.slider.blockSignals(False)
        if not notify:  # else _on_value writes the label (if the value changed at all)
            self.label.setText(format_distance(units / SLIDER_STEPS))

    def _on_pressed(self) -> None:
        # Locked: the drag moves only the handle; the value is asked about on release.
        self.slider.setTracking(not self._is_locked())

    def _on_released(self) -> None:
        if self.slider.hasTracking():
            self.save()
        # Else the release goes on with a SliderMove action (see _on_action), which asks.

    def _on_action(self, _action: int) -> None:
        slider = self.slider
        if self._asking or slider.isSliderDown() or not self._is_locked():
            return
        old, new = self.value, slider.sliderPosition() / SLIDER_STEPS
        if abs(new - old) < 1e-9:
            return
        self._asking = True
        try:
            ok = self._allowed(f"set the match threshold to {format_distance(new)} (now {format_distance(old)})")
        finally:
            self._asking = False
        if ok:
            # The slider applies the position right after this returns; save that value then.
            QTimer.singleShot(0, self.save)
        else:
            slider.setSliderPosition(slider.value())  # cancels the pending move
        slider.setTracking(True)
        slider.update()  # no ghost of the dragged handle

    def _on_value(self, units: int) -> None:
        value = units / SLIDER_STEPS
        self.label.setText(format_distance(value))
        self.thresholdChanged.emit(value)
        self._save_timer.start()

    def save_pending(self) -> None:
        """Save now if a change waits for its save (window closing)."""
        if self._save_timer.isActive():
            self.save()

    def save(self) -> None:
        """Persist the slider's value for the current recognition model."""
        self._save_timer.stop()
        value = self.value
        if abs(value - self.app.threshold) > 1e-9:
            self.app.set_threshold(value)
            log.info("threshold for %s set to %.2f", self.app.model_id, value)
