"""The application context: the data folder, its database, settings and the engine."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path

from faceapp.core.access import AccessRuleError, site_zone
from faceapp.core.fsutil import (
    check_output_target,
    is_empty_folder,
    looks_like_csv,
    looks_like_zip,
    others_can_read,
    remove_leftovers,
    write_private_text,
)
from faceapp.core.matcher import Gallery
from faceapp.core.redact import MASK, has_secret, redact_url
from faceapp.core.settings import Settings, split_door_camera
from faceapp.engine.catalog import LIVENESS_PACK, get_pack
from faceapp.engine.engine import EngineConfig, FaceEngine
from faceapp.engine.installer import verify_pack
from faceapp.engine.liveness import LivenessConfig, LivenessScorer
from faceapp.service.gallery import GalleryLoader
from faceapp.store.backup import BackupInfo, backup_database, is_backup_file
from faceapp.store.db import Store
from faceapp.store.visitors import VisitorStore

log = logging.getLogger(__name__)

# What killed faceapp processes leave in the data folder (see core.fsutil: running ones hold locks).
LEFTOVERS = (".restore-*", ".*.tmp", ".*.tmp-journal")

OUTPUT_KINDS = {
    "csv": (looks_like_csv, "CSV file"),
    "backup": (is_backup_file, "faceapp backup"),
    "zip": (looks_like_zip, "zip file"),
    "folder": (is_empty_folder, "new or empty folder"),
}

DB_NAME = "faceapp.db"
CAMERA_SECRETS_NAME = "camera-secrets.json"
LIVENESS_RECHECK_SECONDS = 5.0


def default_home() -> Path:
    """The data folder: $FACEAPP_HOME, else the platform's user-data folder."""
    env = os.environ.get("FACEAPP_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("faceapp", appauthor=False))


@dataclass(frozen=True)
class HomePaths:
    """Where everything of one installation lives."""

    home: Path

    @classmethod
    def of(cls, home: Path | str | None) -> HomePaths:
        """The paths of ``home``, or of :func:`default_home` when it is None."""
        return cls(default_home() if home is None else Path(home))

    @property
    def db(self) -> Path:
        return self.home / DB_NAME

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def camera_secrets(self) -> Path:
        return self.home / CAMERA_SECRETS_NAME

    @property
    def backups(self) -> Path:
        """Safety copies made before a restore."""
        return self.home / "backups"

    @property
    def reserved(self) -> tuple[str, ...]:
        """Names in the data folder that belong to faceapp, even before they exist."""
        return (DB_NAME, *(DB_NAME + s for s in ("-wal", "-shm", "-journal")), CAMERA_SECRETS_NAME,
                self.models.name, self.backups.name)

    def create(self) -> None:
        """Create the data folder if missing, readable by its owner only: face crops and templates
        are biometric data. An existing folder keeps the permissions its owner gave it (a shared
        station may want a group)."""
        if not self.home.exists():
            self.home.mkdir(parents=True, mode=0o700)

    def remove_leftovers(self) -> list[tuple[Path, int]]:
        """Remove what killed faceapp processes left in the data folder (a restore's staging
        folder, temporary files of backups and settings); running processes' files are locked
        and stay. Returns ``(path, bytes)`` of each one removed."""
        removed = remove_leftovers(self.home, LEFTOVERS)
        if self.backups.is_dir():
            removed += remove_leftovers(self.backups, LEFTOVERS)
        return removed

    def privacy_warnings(self) -> list[str]:
        """Lines about parts of the data folder that other users of this computer can read."""
        lines = []
        if others_can_read(self.home):
            mode = oct(self.home.stat().st_mode & 0o777)[2:]
            lines.append(f"the data folder {self.home} is readable by other users (mode {mode}); "
                         f"make it private with: chmod 700 '{self.home}'")
        for p in [self.db, *(self.db.with_name(self.db.name + s) for s in ("-wal", "-shm")), self.camera_secrets]:
            if p.exists() and others_can_read(p):
                lines.append(f"{p} is readable by other users; make it private with: chmod 600 '{p}'")
        return lines


class App:
    """Opens the store on construction; loads the engine only when first needed."""

    def __init__(self, home: Path | str | None = None, engine: FaceEngine | None = None,
                 liveness: LivenessScorer | None = None) -> None:
        self.paths = HomePaths.of(home)
        self.paths.create()
        removed = self.paths.remove_leftovers()
        if removed:
            log.warning("removed %d leftover(s) of interrupted faceapp runs in %s: %s (%.1f MB)", len(removed),
                        self.paths.home, ", ".join(p.name for p, _ in removed), sum(n for _, n in removed) / 1e6)
        self.store = Store(self.paths.db)
        self._settings = self.store.load_settings()
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._liveness = liveness
        self._liveness_checked = -math.inf
        self._galleries: dict[bool, Gallery] = {}
        self._gallery_stale: set[bool] = set()
        # One loader per kind of gallery: each keeps its spare rows and shares the search index.
        self._gallery_loaders = {k: GalleryLoader(self.store, active_only=not k) for k in (False, True)}
        self._gallery_lock = threading.Lock()

    def audit(self, action: str, details: dict | None = None, target: str | None = None) -> int:
        """Record an administrative action (export, backup, login...) in the audit log."""
        return self.store.audit(action, target, details)

    def check_output(self, dest: Path | str, kind: str, force: bool = False) -> Path:
        """The one guard of every writer of a user-named file (exports, reports, backups):
        refuses the data folder's own files (also through links) and, without ``force``, an
        existing file of another kind. ``kind``: csv, backup, zip or folder."""
        own_kind, what = OUTPUT_KINDS[kind]
        return check_output_target(dest, self.paths.home, self.paths.reserved, own_kind, what, force)

    def backup(self, path: Path | str, force: bool = False) -> BackupInfo:
        """Back up the database to ``path`` (safe while recognition runs) and audit it."""
        self.check_output(path, "backup", force)
        info = backup_database(self.paths.db, path)
        self.audit("backup.create", {"path": str(Path(path)), "bytes": info.size, **info.counts})
        return info

    # -- settings -----------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._settings

    def update_settings(self, **changes) -> Settings:
        """Persist a changed copy of the settings and return it."""
        new = replace(self._settings, **changes)
        self.save_settings(new)
        return new

    def reload_settings(self) -> None:
        """Re-read the settings (another station changed a site-wide one)."""
        settings = self.store.load_settings()
        pack_changed = settings.pack != self._settings.pack
        self._settings = settings
        if pack_changed:
            self._engine = None
            self.invalidate_gallery()

    def save_settings(self, settings: Settings) -> None:
        """Persist ``settings``. A camera address with a password is stored redacted; its full
        form goes to the owner-only file ``camera-secrets.json`` (see :meth:`camera_spec`)."""
        if has_secret(settings.camera):
            self._remember_camera_secret(settings.camera)
            settings = replace(settings, camera=redact_url(settings.camera))
        if any(has_secret(c) for c in settings.station_cameras):
            settings = replace(settings, station_cameras=tuple(
                self._redacted_door_camera(c) for c in settings.station_cameras))
        pack_changed = settings.pack != self._settings.pack
        self.store.save_settings(settings)
        self._settings = settings
        if pack_changed:
            self._engine = None
            self.invalidate_gallery()

    def camera_spec(self, spec: str | None = None) -> str:
        """The camera address to open for ``spec`` (default: the settings' camera): a redacted
        address saved by :meth:`save_settings` comes back with its secret."""
        spec = self._settings.camera if spec is None else spec
        return self._camera_secrets().get(spec, spec) if isinstance(spec, str) and MASK in spec else spec

    def _redacted_door_camera(self, text: str) -> str:
        source, door = split_door_camera(text)
        if not has_secret(source):
            return text
        self._remember_camera_secret(source)
        return f"{redact_url(source)}={door}"

    def _camera_secrets(self) -> dict[str, str]:
        try:
            data = json.loads(self.paths.camera_secrets.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _remember_camera_secret(self, url: str) -> None:
        secrets = self._camera_secrets()
        secrets[redact_url(url)] = url
        write_private_text(self.paths.camera_secrets, json.dumps(secrets, indent=1))

    @property
    def model_id(self) -> str:
        """Embedding space of the configured pack (known without loading any model)."""
        return self._engine.model_id if self._engine is not None else get_pack(self._settings.pack).recognizer_id

    @property
    def site_tz(self) -> tzinfo | None:
        """The site's time zone from the settings (None: the machine's; an unknown name stored by
        hand is reported and ignored)."""
        try:
            return site_zone(self._settings.timezone)
        except AccessRuleError as exc:
            log.warning("%s: using the machine's time zone", exc)
            return None

    @property
    def threshold(self) -> float:
        return self._settings.threshold_for(self.model_id)

    def set_threshold(self, value: float) -> None:
        self.save_settings(self._settings.with_threshold(self.model_id, value))

    # -- engine ---------------------------------------------------------------
    def engine_config(self) -> EngineConfig:
        s = self._settings
        return EngineConfig(pack=s.pack, models_dir=self.paths.models, providers=tuple(s.providers),
                            threads=s.threads, det_threshold=s.det_threshold, det_max_side=s.det_max_side)

    @property
    def engine(self) -> FaceEngine:
        """The prepared engine (loads the models on first use; raises ModelError)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = FaceEngine(self.engine_config())
            engine = self._engine
        return engine.prepare()

    @property
    def liveness_installed(self) -> bool:
        """Is the optional liveness pack installed (whether intact or not)?"""
        return self._liveness is not None or not verify_pack(LIVENESS_PACK, self.paths.models).missing

    def liveness(self) -> LivenessScorer | None:
        """The prepared liveness scorer, or None while the optional pack is not installed (looked
        for again every few seconds, so installing it needs no restart). A damaged pack is a ModelError."""
        if self._liveness is None:
            now = time.monotonic()
            if now - self._liveness_checked < LIVENESS_RECHECK_SECONDS:
                return None
            report = verify_pack(LIVENESS_PACK, self.paths.models)
            if len(report.missing) == len(report.files):
                self._liveness_checked = now
                return None
            lock = self.engine.run_lock   # one model at a time on the CPU, whichever model it is
            with self._engine_lock:
                if self._liveness is None:
                    config = LivenessConfig.from_pack(self.paths.models, providers=tuple(self._settings.providers))
                    self._liveness = LivenessScorer(config, run_lock=lock)
        return self._liveness.prepare()

    # -- gallery --------------------------------------------------------------
    def gallery(self, include_inactive: bool = False) -> Gallery:
        """Current templates of the active model, cached until the store's revision changes (a
        change by this process or any other, checked with one tiny query per call).
        ``include_inactive`` adds deactivated people, marked in ``Gallery.inactive`` (a door
        station names them to refuse them)."""
        with self._gallery_lock:
            cached = self._galleries.get(include_inactive)
            if (cached is not None and include_inactive not in self._gallery_stale
                    and cached.revision == self.store.revision()):
                return cached
            pack = get_pack(self._settings.pack)
            # Only what changed is read when it can be (service.gallery): enrolling one person into
            # a gallery of a million templates appends to it, it does not reload it.
            gallery = self._gallery_loaders[include_inactive].load(pack.recognizer_id, pack.embedding_dim, cached)
            neg_people, neg_emb = VisitorStore(self.store).negatives(pack.recognizer_id)
            gallery = gallery.with_negatives(neg_people, neg_emb) if neg_people.size else gallery
            self._galleries[include_inactive] = gallery
            self._gallery_stale.discard(include_inactive)
            return gallery

    def invalidate_gallery(self) -> None:
        """People, templates or the model changed: the next :meth:`gallery` brings it up to date."""
        with self._gallery_lock:
            self._gallery_stale = set(self._galleries)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
