"""Enrollment quality gate: is this face good enough to become a template?

Pure numpy on the aligned 112x112 crop and the detection, so the GUI, the CLI
and the bulk importer apply the very same rules and give the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceapp.core.types import Detection


@dataclass(frozen=True)
class QualityRules:
    """Limits of the gate. The defaults accept ordinary ID and web photos and refuse
    what makes poor templates; they were checked on ../shared/faces."""

    min_face_px: float = 40.0        # shorter side of the detection box
    min_det_score: float = 0.6
    # Contrast-relative sharpness after a light denoise (see sharpness_of). On the 246 real photos
    # of ../shared/faces: 244 score >= 10.8 (the two under 8 are small, upscaled web photos);
    # blurred by a Gaussian of 6% of the face width, with or without sensor noise of sigma 3 grey
    # levels, every one scores < 8; blurred by 4% plus noise, 98%; by 2%, about half.
    min_sharpness: float = 8.0
    min_brightness: float = 40.0     # mean grey level of the crop, 0..255
    max_brightness: float = 225.0
    max_yaw: float = 0.45            # nose offset from the eye midline / eye distance
    max_roll_deg: float = 30.0


@dataclass(frozen=True)
class Quality:
    """Measurements of one face and the reasons it fails the rules (empty = accepted)."""

    face_px: float
    det_score: float
    sharpness: float
    brightness: float
    yaw: float
    roll_deg: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def score(self) -> float:
        """0..1 summary used to rank shots (sharper, more frontal, larger is better)."""
        s = min(1.0, self.sharpness / 60.0) * 0.4 + (1.0 - min(1.0, abs(self.yaw) / 0.5)) * 0.3
        return float(s + min(1.0, self.face_px / 150.0) * 0.2 + min(1.0, self.det_score) * 0.1)


# Gaussian sigma (pixels of the 112x112 aligned crop) of the denoise before the Laplacian.
DENOISE_SIGMA = 0.8


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low for blurred images."""
    g = gray.astype(np.float32)
    lap = -4.0 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def smooth(gray: np.ndarray, sigma: float = DENOISE_SIGMA) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (numpy only: core has no OpenCV)."""
    g = np.asarray(gray, np.float32)
    r = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-x * x / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(g, ((0, 0), (r, r)), mode="reflect")
    rows = sum(k[i] * p[:, i:i + g.shape[1]] for i in range(2 * r + 1))
    p = np.pad(rows, ((r, r), (0, 0)), mode="reflect")
    return sum(k[i] * p[i:i + g.shape[0], :] for i in range(2 * r + 1))


def sharpness_of(gray: np.ndarray) -> float:
    """Laplacian variance of the lightly denoised face relative to its grey-level variance, x1000.

    The denoise comes first because the Laplacian is the finest high-pass there is: sensor noise
    of a few grey levels on a blurred face gave it as much energy as real detail (blurred photos
    with noise passed, and made templates 0.5-0.8 from the sharp ones). A Gaussian of 0.8 px
    removes that noise and keeps the edges of a sharp face. Relative, so a dark or low-contrast
    but sharp face is not called blurred (the raw Laplacian variance falls with the square of the
    contrast); the floor on the variance keeps an almost flat picture from scoring high."""
    g = np.asarray(gray, np.float32)
    if min(g.shape[:2]) < 8:
        return 0.0
    return 1000.0 * laplacian_variance(smooth(g)) / max(float(g.var()), 100.0)


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll in degrees) estimated from the 5 landmarks. Yaw is the nose's sideways
    offset from the eyes' midpoint relative to the eye distance: 0 frontal, ~0.5 a strong turn."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    left_eye, right_eye, nose = lm[0], lm[1], lm[2]
    eye_vec = right_eye - left_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return 1.0, 90.0
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    # Project the nose onto the eye axis, relative to the eye midpoint.
    mid = (left_eye + right_eye) / 2.0
    yaw = float(np.dot(nose - mid, eye_vec / eye_dist) / eye_dist)
    return yaw, roll


def gray_of(crop_bgr: np.ndarray) -> np.ndarray:
    c = crop_bgr.astype(np.float32)
    return c[:, :, 0] * 0.114 + c[:, :, 1] * 0.587 + c[:, :, 2] * 0.299


def assess(detection: Detection, crop_bgr: np.ndarray, rules: QualityRules = QualityRules()) -> Quality:
    """Measure a face and list the human-readable reasons it should not be enrolled."""
    gray = gray_of(crop_bgr)
    # The centre of the crop is the face itself; borders may be padding or background.
    inner = gray[16:104, 20:92]
    sharp = sharpness_of(inner)
    bright = float(inner.mean())
    yaw, roll = pose_from_landmarks(detection.landmarks)
    px = min(detection.bbox.width, detection.bbox.height)
    reasons = []
    if px < rules.min_face_px:
        reasons.append(f"face too small ({px:.0f} px, need {rules.min_face_px:.0f})")
    if detection.score < rules.min_det_score:
        reasons.append(f"face not clear enough (detector score {detection.score:.2f})")
    if sharp < rules.min_sharpness:
        reasons.append(f"blurred (sharpness {sharp:.0f}, need {rules.min_sharpness:.0f})")
    if bright < rules.min_brightness:
        reasons.append(f"too dark (brightness {bright:.0f})")
    elif bright > rules.max_brightness:
        reasons.append(f"too bright (brightness {bright:.0f})")
    if abs(yaw) > rules.max_yaw:
        reasons.append("face turned too far sideways")
    if abs(roll) > rules.max_roll_deg:
        reasons.append(f"head tilted too much ({abs(roll):.0f} degrees)")
    return Quality(px, detection.score, sharp, bright, yaw, roll, tuple(reasons))
