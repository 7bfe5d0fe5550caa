"""The video widget: the frame scaled to fit, with boxes and name plates drawn on top.

Boxes and text are drawn with QPainter in widget coordinates (not burnt into the
frame), so they stay sharp at any window size and on HiDPI screens, and text size
follows the window, not the camera resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from faceapp.gui.qt_env import bgr_to_qimage
from faceapp.service.pipeline import INACTIVE, TrackedFace


@dataclass(frozen=True)
class FaceStyle:
    """How one kind of decision looks: box/plate colour, text colour, box line, icon."""

    color: str
    text: str
    dash: Qt.PenStyle
    icon: str  # check | question | cross | dots

    # Parsed once: every face of every frame is painted with one of four styles.
    @cached_property
    def fill(self) -> QColor:
        """``color`` as a QColor."""
        return QColor(self.color)

    @cached_property
    def ink(self) -> QColor:
        """``text`` as a QColor."""
        return QColor(self.text)


# Colour is not the only cue (colour-blind staff, grey-scale screenshots): the box line
# and the icon on the plate differ too.
STYLES: dict[str, FaceStyle] = {
    "known": FaceStyle("#22b35e", "#ffffff", Qt.PenStyle.SolidLine, "check"),
    "unknown": FaceStyle("#f5a623", "#1a1a1a", Qt.PenStyle.DashLine, "question"),
    "denied": FaceStyle("#e0392b", "#ffffff", Qt.PenStyle.SolidLine, "cross"),
    "pending": FaceStyle("#8e8e8e", "#ffffff", Qt.PenStyle.DotLine, "dots"),
}


def face_kind(face: TrackedFace) -> str:
    """known | unknown | denied | pending: which style a face is drawn with."""
    if face.decision == "denied":
        return "denied"
    if face.decision == "pending":
        return "pending"
    return "known" if face.known else "unknown"


def format_distance(distance: float) -> str:
    """A distance as shown everywhere in the window (the slider uses the same format)."""
    # 1 - cosine of a face with itself can come out a hair below zero: no "-0.00" on a plate.
    return f"{max(distance, 0.0):.2f}" if math.isfinite(distance) else "–"


def face_label(face: TrackedFace) -> tuple[str, str]:
    """(main text, distance text) of a face's plate."""
    kind = face_kind(face)
    dist = format_distance(face.distance) if math.isfinite(face.distance) else ""
    if kind == "pending" and face.liveness == "checking":
        # A known person at a door that wants a live face: what they should do, or that we are looking.
        who = face.candidate_name or f"person {face.candidate_id}"
        # The plate says it short; the whole sentence is shown large over the picture.
        return (f"{who}: {face.prompt.replace('turn your head ', 'turn ')}" if face.prompt
                else f"{who} · checking…"), dist
    if kind == "pending":
        return "identifying…", dist
    if kind == "denied":
        who = face.candidate_name if face.known and face.candidate_name else "unknown"
        if face.liveness == "not live":
            return f"{who} · not live?", dist
        if face.reason == INACTIVE:   # a deactivated person: the desk should know why
            return f"inactive: {who}", dist
        return f"{who} · no access", dist
    if kind == "known":
        return face.candidate_name or f"person {face.candidate_id}", dist
    return "unknown", dist


def fit_rect(image_w: int, image_h: int, area: QRectF) -> QRectF:
    """The largest rectangle of the image's aspect centred in ``area``."""
    if image_w <= 0 or image_h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRectF()
    scale = min(area.width() / image_w, area.height() / image_h)
    w, h = image_w * scale, image_h * scale
    return QRectF(area.x() + (area.width() - w) / 2.0, area.y() + (area.height() - h) / 2.0, w, h)


def _draw_icon(p: QPainter, icon: str, box: QRectF, color: QColor) -> None:
    """A small symbol in a circle: check, question mark, cross or three dots."""
    p.save()
    r = box.width() / 2.0
    c = box.center()
    pen = QPen(color, max(1.2, r * 0.22))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(c, r * 0.88, r * 0.88)
    if icon == "check":
        path = QPainterPath(QPointF(c.x() - r * 0.42, c.y() + r * 0.02))
        path.lineTo(c.x() - r * 0.12, c.y() + r * 0.32)
        path.lineTo(c.x() + r * 0.45, c.y() - r * 0.32)
        p.drawPath(path)
    elif icon == "cross":
        d = r * 0.36
        p.drawLine(QPointF(c.x() - d, c.y() - d), QPointF(c.x() + d, c.y() + d))
        p.drawLine(QPointF(c.x() - d, c.y() + d), QPointF(c.x() + d, c.y() - d))
    elif icon == "question":
        path = QPainterPath(QPointF(c.x() - r * 0.3, c.y() - r * 0.25))
        path.arcTo(QRectF(c.x() - r * 0.3, c.y() - r * 0.55, r * 0.6, r * 0.55), 180, -250)
        path.lineTo(c.x(), c.y() + r * 0.15)
        p.drawPath(path)
        p.setBrush(color)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QPointF(c.x(), c.y() + r * 0.45), r * 0.1, r * 0.1)
    else:  # dots: still deciding
        p.setBrush(color)
        p.setPen(Qt.PenStyle.NoPen)
        for dx in (-0.38, 0.0, 0.38):
            p.drawEllipse(QPointF(c.x() + r * dx, c.y()), r * 0.12, r * 0.12)
    p.restore()


def _overlap(a: QRectF, b: QRectF) -> float:
    r = a.intersected(b)
    return 0.0 if r.isEmpty() else r.width() * r.height()


def place_plate(box: QRectF, size: tuple[float, float], bounds: QRectF, obstacles: list[QRectF],
                gap: float) -> QRectF:
    """Where a name plate of ``size`` goes: above its box, else below, else inside its top,
    inside ``bounds`` and over as little of ``obstacles`` (other plates and faces) as possible."""
    w, h = size
    x = box.center().x() - w / 2 if w > box.width() else box.left()
    x = min(max(x, bounds.left()), bounds.right() - w)
    candidates = []
    for y in (box.top() - h - gap, box.bottom() + gap, box.top() + gap):
        y = min(max(y, bounds.top()), bounds.bottom() - h)
        candidates.append(QRectF(x, y, w, h))
    # Covering the own face is bad, covering others' plates and faces worse; on a tie the
    # earlier (preferred) position wins.
    return min(candidates, key=lambda r: 0.5 * _overlap(r, box) + sum(_overlap(r, o) for o in obstacles))


def unstack_plate(rect: QRectF, bounds: QRectF, placed: list[QRectF], gap: float) -> QRectF:
    """``rect`` moved up or down (the least) so that it covers no plate in ``placed``; unchanged
    if it covers none, or if no free place exists within ``bounds``."""
    if not any(rect.intersects(o) for o in placed):
        return rect
    h = rect.height()
    ys = {rect.y()}
    for o in placed:
        ys.update((o.top() - h - gap, o.bottom() + gap))
    free = [QRectF(rect.x(), y, rect.width(), h) for y in ys
            if bounds.top() <= y and y + h <= bounds.bottom()]
    free = [r for r in free if not any(r.intersects(o) for o in placed)]
    return min(free, key=lambda r: abs(r.y() - rect.y())) if free else rect


# Names of enrolled people are what the reception reads; strangers and faces still being
# identified get smaller plates, so a crowd does not bury the picture under labels.
PLATE_SCALE = {"known": 1.0, "denied": 1.0, "unknown": 0.75, "pending": 0.7}


def plate_scale(face: TrackedFace) -> float:
    """Relative plate size: a liveness prompt is read by the person at the door, so it is full size."""
    if face.liveness == "checking":
        return 1.0
    return PLATE_SCALE[face_kind(face)]


def liveness_prompt(faces: tuple[TrackedFace, ...]) -> str | None:
    """The head-turn prompt to show large over the picture (the largest face that has one)."""
    asking = [f for f in faces if f.prompt and f.liveness in ("checking", "not live") and f.candidate_name]
    if not asking:
        return None
    f = max(asking, key=lambda f: f.bbox.area)
    return f"{f.candidate_name}, {f.prompt}"

_BACKGROUND = QColor("#101214")
_OUTLINE = QColor(0, 0, 0, 150)  # under each box line
_PLATE_EDGE = QColor(0, 0, 0, 120)
_DIM = QColor(0, 0, 0, 140)
_MESSAGE_BG = QColor(0, 0, 0, 190)
_PROMPT_BG = QColor(20, 85, 190, 230)   # the liveness prompt: an instruction, not an alarm
_BANNER_BG = {"error": QColor(200, 40, 30, 225), "info": QColor(30, 40, 55, 210)}
_MESSAGE_TEXT = QColor("#ffffff")
_MESSAGE_FLAGS = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)


class _PlateText:
    """Fonts and spacing of name plates at one text size."""

    def __init__(self, px: float) -> None:
        self.name_font = QFont()
        self.name_font.setPixelSize(max(8, round(px)))
        self.name_font.setBold(True)
        self.dist_font = QFont(self.name_font)
        self.dist_font.setBold(False)
        self.dist_font.setPixelSize(max(8, round(px * 0.8)))
        self.fm_name = QFontMetricsF(self.name_font)
        self.fm_dist = QFontMetricsF(self.dist_font)
        self.pad = px * 0.35
        self.gap = self.pad * 0.8
        self.icon_d = self.fm_name.height() * 0.9
        self.height = self.fm_name.height() + 2 * self.pad * 0.6

    def layout(self, name: str, dist: str, max_w: float) -> tuple[str, str, float]:
        """(name, distance, plate width) fitting ``max_w``: only the person's name is shortened;
        the decision words ("· no access", "inactive:") never are. The distance is dropped
        before the name would shrink to nothing. The width can exceed ``max_w`` when even the
        decision words do not fit; the caller then takes a smaller font."""
        prefix, who, suffix = split_plate_text(name)
        fixed_w = self.pad + self.icon_d + self.gap + self.pad
        kept_w = self.fm_name.horizontalAdvance(prefix + suffix)
        min_who = self.fm_name.horizontalAdvance(who[:3] + "…") if who else 0.0
        dist_w = self.fm_dist.horizontalAdvance(dist) + self.gap if dist else 0.0
        if dist and fixed_w + kept_w + dist_w + min_who > max_w:
            dist, dist_w = "", 0.0
        room = max_w - fixed_w - kept_w - dist_w
        if who and self.fm_name.horizontalAdvance(who) > room:
            who = self.fm_name.elidedText(who, Qt.TextElideMode.ElideRight, max(min_who, room))
        text = prefix + who + suffix
        return text, dist, fixed_w + dist_w + self.fm_name.horizontalAdvance(text)


def split_plate_text(text: str) -> tuple[str, str, str]:
    """("inactive: ", "Ada", " · no access"): the words around a name that must stay whole."""
    prefix = suffix = ""
    if " · " in text:
        text, rest = text.rsplit(" · ", 1)
        suffix = " · " + rest
    if ": " in text:
        head, text = text.split(": ", 1)
        prefix = head + ": "
    return prefix, text, suffix


def plate_texts(text_px: float) -> dict[float, _PlateText]:
    """Plate fonts for every plate scale at ``text_px`` (worth keeping while the size stays)."""
    return {scale: _PlateText(text_px * scale) for scale in set(PLATE_SCALE.values())}


@dataclass(frozen=True, eq=False)
class _Plate:
    face: TrackedFace
    style: FaceStyle
    rect: QRectF
    name: str
    dist: str
    text: _PlateText


def paint_faces(p: QPainter, target: QRectF, image_size: tuple[int, int], faces: tuple[TrackedFace, ...],
                bounds: QRectF, text_px: float, texts: dict[float, _PlateText] | None = None,
                rects_out: list[QRectF] | None = None) -> list[str]:
    """Boxes and name plates of ``faces`` (in image pixels) for an image drawn into ``target``.

    Plates stay inside ``bounds`` and avoid each other; ``texts`` is :func:`plate_texts` of
    ``text_px`` if the caller keeps it. Returns the label texts, in face order."""
    img_w, img_h = image_size
    if not faces or target.isEmpty() or img_w <= 0:
        return []
    s = target.width() / img_w
    if texts is None:
        texts = plate_texts(text_px)
    boxes = {}
    for face in faces:
        b = face.bbox
        boxes[id(face)] = QRectF(target.x() + b.x1 * s, target.y() + b.y1 * s, b.width * s, b.height * s)

    # Boxes first, so no box is drawn across a plate.
    for face in faces:
        kind = face_kind(face)
        style = STYLES[kind]
        box = boxes[id(face)]
        line = max(2.0, min(text_px * 0.22, box.height() / 25.0))
        if kind == "denied":
            line *= 1.5
        # A dark outline under the coloured line keeps it visible on any background.
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(_OUTLINE, line + 2.0))
        p.drawRoundedRect(box, line, line)
        pen = QPen(style.fill, line, style.dash)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        p.drawRoundedRect(box, line, line)

    # Known people first, then nearer (larger) faces, choose their plate position; they are
    # drawn last, on top.
    order = sorted(faces, key=lambda f: (plate_scale(f) < 1.0, -f.bbox.area))
    plates: list[_Plate] = []
    placed: list[QRectF] = []
    for face in order:
        kind = face_kind(face)
        text = texts[plate_scale(face)]
        label, dist = face_label(face)
        max_w = bounds.width() - 4.0
        name, dist, width = text.layout(label, dist, max_w)
        if width > max_w:  # even the decision words do not fit: a smaller font, never cut words
            text = _PlateText(text.name_font.pixelSize() * max_w / width * 0.95)
            name, dist, width = text.layout(label, dist, max_w)
        others = [boxes[id(f)] for f in faces if f is not face]
        rect = place_plate(boxes[id(face)], (width, text.height), bounds, placed + others, text.gap / 2)
        rect = unstack_plate(rect, bounds, placed, text.gap / 2)
        placed.append(rect)
        plates.append(_Plate(face, STYLES[kind], rect, name, dist, text))
    for plate in reversed(plates):
        _draw_plate(p, plate)
    if rects_out is not None:
        rects_out[:] = [pl.rect for pl in plates]
    drawn = {id(pl.face): f"{pl.name} {pl.dist}".strip() for pl in plates}
    return [drawn[id(f)] for f in faces]


def _draw_plate(p: QPainter, plate: _Plate) -> None:
    r, t = plate.rect, plate.text
    text_color = plate.style.ink
    p.setPen(QPen(_PLATE_EDGE, 1.0))
    p.setBrush(plate.style.fill)
    p.drawRoundedRect(r, r.height() * 0.22, r.height() * 0.22)
    icon_box = QRectF(r.x() + t.pad, r.y() + (r.height() - t.icon_d) / 2, t.icon_d, t.icon_d)
    _draw_icon(p, plate.style.icon, icon_box, text_color)
    p.setPen(text_color)
    p.setFont(t.name_font)
    tx = icon_box.right() + t.gap
    left = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
    p.drawText(QRectF(tx, r.y(), r.right() - tx, r.height()), left, plate.name)
    if plate.dist:
        p.setFont(t.dist_font)
        dx = tx + t.fm_name.horizontalAdvance(plate.name) + t.gap
        p.drawText(QRectF(dx, r.y(), r.right() - dx, r.height()), left, plate.dist)


def _message_layout(text: str, px: float, max_w: float) -> tuple[QFont, QRectF]:
    """The font of a message and the size its wrapped text takes."""
    font = QFont()
    font.setPixelSize(max(10, round(px)))
    return font, QFontMetricsF(font).boundingRect(QRectF(0, 0, max_w, 10_000), _MESSAGE_FLAGS, text)


def _draw_message(p: QPainter, area: QRectF, text: str, px: float, background: QColor,
                  align_top: bool = False,
                  layout: Callable[[str, float, float], tuple[QFont, QRectF]] = _message_layout,
                  align_bottom: bool = False) -> None:
    pad = px * 0.7
    # Wrapped for the width it is drawn in (inside the padding), so it never wraps to one more line
    # than the plate was sized for.
    max_w = min(area.width() * (0.96 if align_top or align_bottom else 0.8), area.width() - 2 * pad - 2)
    font, bounding = layout(text, px, max_w)
    p.setFont(font)
    w = min(area.width(), bounding.width() + 2 * pad)
    h = bounding.height() + 2 * pad * 0.7
    x = area.center().x() - w / 2
    y = area.top() + px * 0.5 if align_top else area.center().y() - h / 2
    if align_bottom:   # like a subtitle: faces are rarely at the bottom of a door camera's picture
        y = area.bottom() - h - px * 0.5
    plate = QRectF(x, y, w, h)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(background)
    p.drawRoundedRect(plate, px * 0.4, px * 0.4)
    p.setPen(_MESSAGE_TEXT)
    p.drawText(plate.adjusted(pad, 0, -pad, 0), _MESSAGE_FLAGS, text)


def place_in_corner(parent: QWidget, widget: QWidget | None, margin: int) -> None:
    """Put ``widget`` (a child of ``parent``, at its own size) in ``parent``'s bottom-right corner."""
    if widget is None:
        return
    widget.adjustSize()
    widget.move(parent.width() - widget.width() - margin, parent.height() - widget.height() - margin)
    widget.raise_()


class LiveView(QWidget):
    """Shows one frame with its faces, plus an optional centre message and top banner."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._faces: tuple[TrackedFace, ...] = ()
        self._captured: float | None = None
        self._reported = True
        self._message: str | None = None
        self._banner: tuple[str, str] | None = None
        self._dim = False
        self._large = False
        self._corner: QWidget | None = None
        # Fonts and text layouts change only with the size or the text, not per frame.
        self._plate_texts: tuple[float, dict[float, _PlateText]] | None = None
        self._layouts: dict[tuple[str, float, float], tuple[QFont, QRectF]] = {}
        self.last_labels: list[str] = []  # what the last paint wrote on the faces
        self.last_plates: list[QRectF] = []  # where it put their plates
        self.last_prompt: str | None = None  # the liveness prompt the last paint showed large
        # Called with time.monotonic() of the shown frame's capture, on its first paint
        # (a plain callback: it runs for every frame and needs no signal).
        self.on_painted: Callable[[float], None] | None = None

    # -- content ----------------------------------------------------------------
    def set_frame(self, image: np.ndarray | None, faces: tuple[TrackedFace, ...] = (),
                  captured: float | None = None) -> None:
        """Show ``image`` with ``faces`` (their boxes are in this image's pixels)."""
        if image is not self._image:
            self._image = image
            self._qimage = bgr_to_qimage(image) if image is not None else None
            self._captured = captured
            self._reported = captured is None
        self._faces = tuple(faces)
        self.update()

    def set_faces(self, faces: tuple[TrackedFace, ...]) -> None:
        """Replace the faces on the current image (a re-decision after a threshold change)."""
        self._faces = tuple(faces)
        self.update()

    @property
    def faces(self) -> tuple[TrackedFace, ...]:
        return self._faces

    @property
    def image(self) -> np.ndarray | None:
        return self._image

    def set_message(self, text: str | None, dim: bool = False) -> None:
        """A message in the middle of the picture (camera lost, end of video); None hides it."""
        if text != self._message or dim != self._dim:
            self._message = text
            self._dim = dim
            self.update()

    @property
    def message(self) -> str | None:
        return self._message

    def set_banner(self, text: str | None, kind: str = "info") -> None:
        """A strip at the top (models loading or missing); kind is info | error."""
        banner = (text, kind) if text else None
        if banner != self._banner:
            self._banner = banner
            self.update()

    @property
    def banner(self) -> str | None:
        return self._banner[0] if self._banner else None

    def set_large(self, large: bool) -> None:
        """Reception mode: names readable from across the hall."""
        self._large = large
        self.update()

    def set_corner_widget(self, widget: QWidget | None) -> None:
        """A small child widget kept in the bottom-right corner (the reception exit button)."""
        self._corner = widget
        if widget is not None:
            widget.setParent(self)
            self._place_corner()

    def face_at(self, pos) -> TrackedFace | None:
        """The face whose box is under ``pos`` (widget coordinates), smallest box first."""
        if self._qimage is None or not self._faces:
            return None
        w, h = self._qimage.width(), self._qimage.height()
        target = fit_rect(w, h, QRectF(self.rect()))
        s = target.width() / w
        x, y = (pos.x() - target.x()) / s, (pos.y() - target.y()) / s
        hits = [f for f in self._faces if f.bbox.x1 <= x <= f.bbox.x2 and f.bbox.y1 <= y <= f.bbox.y2]
        return min(hits, key=lambda f: f.bbox.area) if hits else None

    # -- geometry ---------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def text_px(self) -> float:
        """Label text size in logical pixels: follows the widget size, larger in reception mode."""
        base = min(self.height() / 26.0, self.width() / 40.0)
        if self._large:
            return max(24.0, min(96.0, base * 2.0))
        return max(13.0, min(40.0, base))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_corner()

    def _place_corner(self) -> None:
        place_in_corner(self, self._corner, 8)

    # -- painting ---------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        try:
            self.render_scene(p, QRectF(self.rect()))
        finally:
            p.end()
        if not self._reported:  # set_frame leaves it False only with a capture time
            self._reported = True
            if self.on_painted is not None:
                self.on_painted(self._captured)

    def render_scene(self, p: QPainter, area: QRectF) -> None:
        """Everything the widget shows, painted into ``area`` of any paint device."""
        p.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                         | QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(area, _BACKGROUND)
        px = self.text_px()
        qimage = self._qimage
        if qimage is not None:
            w, h = qimage.width(), qimage.height()
            target = fit_rect(w, h, area)
            p.drawImage(target, qimage)
            self.last_labels = paint_faces(p, target, (w, h), self._faces, area, px, self._texts_for(px),
                                           self.last_plates)
            if self._dim:
                p.fillRect(target, _DIM)
        else:
            self.last_labels = []
            self.last_plates.clear()
        prompt = liveness_prompt(self._faces) if qimage is not None else None
        self.last_prompt = prompt
        if prompt:
            # Large: the person at the door reads it from where they stand (larger still in reception mode).
            _draw_message(p, area, prompt, px * (0.8 if self._large else 1.3), _PROMPT_BG,
                          layout=self._layout, align_bottom=True)
        if self._banner:
            text, kind = self._banner
            bg = _BANNER_BG["error" if kind == "error" else "info"]
            _draw_message(p, area, text, max(12.0, px * 0.75), bg, align_top=True, layout=self._layout)
        if self._message:
            _draw_message(p, area, self._message, px * (0.7 if self._large else 1.0), _MESSAGE_BG,
                          layout=self._layout)

    def _texts_for(self, px: float) -> dict[float, _PlateText]:
        if self._plate_texts is None or self._plate_texts[0] != px:
            self._plate_texts = (px, plate_texts(px))
        return self._plate_texts[1]

    def _layout(self, text: str, px: float, max_w: float) -> tuple[QFont, QRectF]:
        key = (text, px, max_w)
        got = self._layouts.get(key)
        if got is None:
            if len(self._layouts) >= 8:  # a banner and a message are shown at a time
                self._layouts.clear()
            got = self._layouts[key] = _message_layout(text, px, max_w)
        return got
