"""From an unknown to a person: right-click an unknown face on the live view, or an unknown
entry in the entry log, then "Enroll this person…" opens the enrollment dialog with that face
(and, on the live view, the best shots of its track so far) as the first photos."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMenu

from faceapp.core.types import BBox
from faceapp.gui.enroll_dialog import EnrollDialog, open_enroll_dialog
from faceapp.gui.live_view import face_kind
from faceapp.gui.workers import Recognized
from faceapp.service.app import App

BEST_SHOTS = 3  # per unknown track, kept while it is on screen
TRACKS_KEPT = 20
MARGIN = 0.6  # of the face size around it: enough context for the detector, no neighbours


def face_crop(image: np.ndarray, bbox: BBox, margin: float = MARGIN) -> np.ndarray:
    """The face with some room around it, as its own picture."""
    h, w = image.shape[:2]
    cx, cy = bbox.center
    half = max(bbox.width, bbox.height) * (0.5 + margin)
    x1, y1 = max(0, int(cx - half)), max(0, int(cy - half))
    x2, y2 = min(w, int(cx + half)), min(h, int(cy + half))
    return np.ascontiguousarray(image[y1:y2, x1:x2])


class EnrollFromUnknown(QObject):
    """Context menus on the live view and the entry log (see the module docstring)."""

    def __init__(self, window, app: App) -> None:
        super().__init__(window)
        self.window = window
        self.app = app
        self.dialogs: list[EnrollDialog] = []
        self._best: OrderedDict[int, list[tuple[float, np.ndarray]]] = OrderedDict()
        window.live.resultShown.connect(self._keep_best)
        window.live.cameraChanged.connect(self._best.clear)
        view = window.view
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._live_menu)
        log_page = window.page("Entry log")
        if log_page is not None:
            log_page.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            log_page.table.customContextMenuRequested.connect(self._log_menu)
        self.menu: QMenu | None = None  # the last menu shown (tests trigger its actions)

    # -- best shots of unknown tracks ----------------------------------------------------------
    def _keep_best(self, rec: Recognized) -> None:
        image = rec.result.image
        for f in rec.result.faces:
            if face_kind(f) != "unknown":
                continue
            shots = self._best.setdefault(f.track_id, [])
            self._best.move_to_end(f.track_id)
            score = f.bbox.area * f.det_score
            if len(shots) < BEST_SHOTS or score > shots[-1][0]:
                shots.append((score, face_crop(image, f.bbox)))
                shots.sort(key=lambda s: -s[0])
                del shots[BEST_SHOTS:]
        while len(self._best) > TRACKS_KEPT:
            self._best.popitem(last=False)

    def best_shots(self, track_id: int) -> list[np.ndarray]:
        return [img for _, img in self._best.get(track_id, [])]

    # -- menus ----------------------------------------------------------------------------------
    def _popup(self, widget, pos, enroll) -> None:
        menu = QMenu(widget)
        action = menu.addAction("Enroll this person…")
        action.triggered.connect(lambda *_: enroll())
        self.menu = menu
        menu.popup(widget.mapToGlobal(pos))

    def _live_menu(self, pos) -> None:
        face = self.window.view.face_at(pos)
        if face is None or face_kind(face) != "unknown" or self.window.reception:
            return
        image = self.window.view.image
        if image is None:
            return
        first = face_crop(image, face.bbox)
        self._popup(self.window.view, pos, lambda: self.enroll([first, *self.best_shots(face.track_id)]))

    def _log_menu(self, pos) -> None:
        page = self.window.page("Entry log")
        index = page.table.indexAt(pos)
        entry = page.model.entry(index.row()) if index.isValid() else None
        if entry is None or entry.person_id is not None or not entry.has_snapshot:
            return
        data = page._entries.snapshot(entry.id)
        if not data:
            return
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return
        self._popup(page.table.viewport(), pos, lambda: self.enroll([image]))

    def enroll(self, images: list[np.ndarray]) -> EnrollDialog | None:
        """The enrollment dialog with ``images`` as its first photos (administrator only)."""
        if not self.window.admin_allowed("enroll a person"):
            return None
        dialog = open_enroll_dialog(self.app, self.window.latest_frame, self.window)
        dialog.add_images(images, "unknown face")
        people = self.window.page("People")
        if people is not None and hasattr(people, "_on_enrolled"):
            dialog.enrolled.connect(people._on_enrolled)
        self.dialogs.append(dialog)
        return dialog


def install_enroll_unknown(window, app: App) -> EnrollFromUnknown:
    window.enroll_unknown = EnrollFromUnknown(window, app)
    return window.enroll_unknown
