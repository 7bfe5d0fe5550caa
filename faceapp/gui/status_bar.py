"""The window's status bar: camera source, models, fps/latency, and indicators other parts add
(lock state, this window's door, site status...). Texts elide with "…" instead of being cut,
so a narrow window never shows "- rur" or "latency 87 r"."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import QLabel, QMainWindow, QSizePolicy, QStatusBar, QWidget


class ElidedLabel(QLabel):
    """A one-line label that shrinks below its text, ending it with "…" (full text in the tooltip)."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(text, parent)
        self._elide = elide
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        if text != self.text():
            super().setText(text)
            self.setToolTip(text)
            self.updateGeometry()

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(QFontMetrics(self.font()).horizontalAdvance(self.text()) + 8, hint.height())

    def minimumSizeHint(self) -> QSize:
        return QSize(40, super().minimumSizeHint().height())

    def shown_text(self) -> str:
        """The text as painted now (elided to the label's width)."""
        return QFontMetrics(self.font()).elidedText(self.text(), self._elide, max(0, self.contentsRect().width()))

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        try:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.contentsRect(), int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), self.shown_text())
        finally:
            p.end()


class StatusBar:
    """Builds the status bar of ``window``: source (left, stretches), then indicators, models and
    stats (right). ``add_indicator`` is the hook for other parts (lock, door, site)."""

    def __init__(self, window: QMainWindow) -> None:
        self.bar: QStatusBar = window.statusBar()
        self.bar.setSizeGripEnabled(True)
        self.source_label = ElidedLabel()
        self.source_label.setObjectName("source")
        self.models_label = ElidedLabel("models: loading…")
        self.models_label.setObjectName("models")
        self.stats_label = ElidedLabel()
        self.stats_label.setObjectName("stats")
        self.bar.addWidget(self.source_label, 3)
        self._indicators: list[QWidget] = []
        self.bar.addPermanentWidget(self.models_label, 1)
        self.bar.addPermanentWidget(self.stats_label, 3)

    def add_indicator(self, widget: QWidget, stretch: int = 0) -> None:
        """Put a small widget (label, tool button) on the right, before models and stats."""
        self._indicators.append(widget)
        self.bar.insertPermanentWidget(len(self._indicators), widget, stretch)  # after the one normal widget

    def set_models(self, state: str, message: str) -> None:
        self.models_label.setText({"loading": "models: loading…", "ready": f"models: {message}"}
                                  .get(state, "models: not loaded"))

    def set_source(self, text: str) -> None:
        self.source_label.setText(text)

    def set_stats(self, text: str) -> None:
        self.stats_label.setText(text)
