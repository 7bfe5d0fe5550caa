"""The one typed settings object. Persisted as JSON by the store layer; unknown keys are ignored
and bad values fall back to defaults with a logged warning, so an old or hand-edited file never
stops the app from starting."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from faceapp.core.matcher import Aggregate

log = logging.getLogger(__name__)

# Default thresholds on the user distance scale (1 - cosine), per recognition model.
# Measured on ../shared/faces with `faceapp evaluate` (see README, "Accuracy"): the largest
# 0.01 step that accepts no stranger (277 stranger searches of `faceapp evaluate`, and every
# passer-by of the 1080p street video against 29 enrolled people) and at most 1 in 10,000
# different-person photo pairs. w600k_r50 was not available to measure.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "w600k_mbf": 0.70,
    "w600k_r50": 0.62,
    "sface": 0.53,
}
FALLBACK_THRESHOLD = 0.62


@dataclass(frozen=True)
class Settings:
    """Everything a user can change. Frozen: change with :func:`dataclasses.replace`."""

    pack: str = "buffalo_sc"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 2
    # Per recognition-model threshold on the user scale; missing -> DEFAULT_THRESHOLDS.
    thresholds: dict[str, float] = field(default_factory=dict)
    aggregate: str = "min"
    det_threshold: float = 0.5
    det_max_side: int = 640
    camera: str = "0"
    loop_video: bool = True
    door: str = "Main entrance"
    # The site's time zone (IANA name such as "Europe/Berlin") in which door hours are judged and
    # days are reported; "" = the machine's own zone.
    timezone: str = ""
    # Tracking / attendance
    vote_frames: int = 3
    min_margin: float = 0.05
    cooldown_seconds: float = 60.0
    reembed_every: int = 5
    # Liveness at doors that require it (see faceapp.core.liveness)
    liveness_threshold: float = 0.5    # fused "real" share of the MiniFASNet models, 0..1
    liveness_frames: int = 5           # judged frames a track's liveness verdict is the median of
    challenge_seconds: float = 8.0     # time a person has to turn the head left and right
    # Privacy
    snapshot_retention_days: int = 30
    entry_retention_days: int = 0      # 0 = keep entries forever
    safety_copy_retention_days: int = 30   # copies kept in backups/ before a restore or an upgrade
    reception_mode: bool = False
    alert_sound: bool = True           # a denied (or unknown) face rings the bell
    alert_unknown: bool = False        # unknown visitors raise an alert too, not only denied people
    window_geometry: str = ""  # the main window's last geometry (Qt saveGeometry, hex)
    # This PC's door cameras, "SOURCE=DOOR" each (issue #16): with any, the Live page shows their
    # grid instead of the one camera above. Local like `camera`: only the keys in
    # store.migrations.SITE_SETTINGS are replicated to a site.
    station_cameras: tuple[str, ...] = ()

    def threshold_for(self, model_id: str) -> float:
        """Threshold for a recognition model (its stored value, else the measured default)."""
        if model_id in self.thresholds:
            return float(self.thresholds[model_id])
        base = model_id.split("@")[0]
        return DEFAULT_THRESHOLDS.get(base, FALLBACK_THRESHOLD)

    def with_threshold(self, model_id: str, value: float) -> Settings:
        """A copy with the threshold of ``model_id`` set to ``value`` (clamped to 0..2)."""
        t = dict(self.thresholds)
        t[model_id] = float(min(2.0, max(0.0, value)))
        return replace(self, thresholds=t)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["providers"] = list(self.providers)
        d["station_cameras"] = list(self.station_cameras)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Build from stored JSON, keeping defaults for missing or invalid values."""
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(defaults, f.name)
            try:
                kwargs[f.name] = _coerce(value, default)
                if f.name == "aggregate":
                    kwargs[f.name] = Aggregate.parse(kwargs[f.name]).value   # "knn" was removed
                elif f.name == "station_cameras":
                    kwargs[f.name] = _door_cameras(value)
            except (TypeError, ValueError):
                log.warning("settings: ignoring invalid %s=%r", f.name, value)
                kwargs.pop(f.name, None)
        return cls(**kwargs)


def split_door_camera(text: str) -> tuple[str, str]:
    """``SOURCE=DOOR`` -> (source, door), split at the last '=' (so a stream URL with a query string
    works); ValueError with a one-line reason if either part is missing."""
    source, sep, door = str(text).rpartition("=")
    if not sep or not source.strip() or not door.strip():
        raise ValueError(f"'{text}' is not SOURCE=DOOR (e.g. 0=Front, videos/lobby.mp4=Lobby)")
    return source.strip(), " ".join(door.split())


def _door_cameras(value: Any) -> tuple[str, ...]:
    """The station_cameras setting: a list of SOURCE=DOOR texts; a bad entry is dropped (warned),
    the others kept, so one typo does not take every door camera away."""
    if not isinstance(value, (list, tuple)):
        raise TypeError
    kept = []
    for text in value:
        try:
            if not isinstance(text, str):
                raise ValueError(f"{text!r} is not a text")
            source, door = split_door_camera(text)
        except ValueError as exc:
            log.warning("settings: ignoring a door camera: %s", exc)
            continue
        kept.append(f"{source}={door}")
    return tuple(kept)


def _coerce(value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError
        return value
    if isinstance(default, int):
        if isinstance(value, bool):
            raise TypeError
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError
        return value
    if isinstance(default, tuple):
        return tuple(str(v) for v in value)
    if isinstance(default, dict):
        return {str(k): float(v) for k, v in dict(value).items()}
    return value
