"""Typed results passed between layers. Frozen dataclasses: a typo is an AttributeError."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BBox:
    """Axis-aligned box in pixel coordinates of the image it was found in."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]

    def iou(self, other: BBox) -> float:
        """Intersection over union with another box (0 when disjoint)."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face: box, detector confidence and the 5 landmarks
    (left eye, right eye, nose, left mouth corner, right mouth corner) as a (5, 2) array."""

    bbox: BBox
    score: float
    landmarks: np.ndarray


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face with its L2-normalised embedding and the 112x112 aligned BGR crop."""

    detection: Detection
    embedding: np.ndarray
    crop: np.ndarray

    @property
    def bbox(self) -> BBox:
        return self.detection.bbox


@dataclass(frozen=True)
class PersonRef:
    """The little the matcher needs to know about a person."""

    person_id: int
    name: str


@dataclass(frozen=True)
class Match:
    """Outcome of comparing one embedding with the gallery.

    ``distance`` is on the user scale (see :mod:`faceapp.core.scale`): 0 identical, 1 unrelated.
    ``margin`` is how much further the second-best person is (inf when there is none).
    """

    person_id: int | None
    name: str | None
    distance: float
    margin: float
    known: bool
    second_person_id: int | None = None

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


@dataclass(frozen=True, eq=False)
class Recognition:
    """A face in a frame together with the matcher's verdict."""

    face: Face
    match: Match
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Person:
    """An enrolled person as stored."""

    id: int
    name: str
    employee_id: str | None = None
    department: str | None = None
    active: bool = True
    created: str = ""
    n_photos: int = 0
    n_templates: int = 0
