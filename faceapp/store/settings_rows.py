"""Settings rows (key -> JSON value) of :class:`faceapp.store.db.Store` (a mixin), with the
audit of what changed."""

from __future__ import annotations

import json
import logging

from faceapp.core.settings import Settings

log = logging.getLogger(__name__)


class SettingsMixin:
    """Loading and saving :class:`Settings` in the ``settings`` table."""

    # -- settings -------------------------------------------------------------
    def load_settings(self) -> Settings:
        rows = self.query("SELECT key, value FROM settings")
        data = {}
        for r in rows:
            try:
                data[r["key"]] = json.loads(r["value"])
            except ValueError:
                log.warning("settings: ignoring unreadable value of %s", r["key"])
        return Settings.from_dict(data)

    def save_settings(self, settings: Settings) -> None:
        """Persist every setting; the keys whose value changed are audited as ``[old, new]``."""
        with self.transaction() as conn:
            stored = dict(conn.execute("SELECT key, value FROM settings").fetchall())
            new = settings.to_dict()
            defaults = Settings().to_dict()
            for key, value in new.items():
                # Only changed keys are written (a missing key still at its default is a change of
                # nothing): on a station, a site-wide key written here must reach the site, and a
                # change of a local one (the camera, the window's place) must work offline.
                if key not in stored and value == defaults.get(key):
                    continue
                conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                             "SET value = excluded.value WHERE value IS NOT excluded.value", (key, json.dumps(value)))
            changed = _settings_changes(stored, new)
            if changed:
                only_thresholds = all(k.startswith("thresholds.") for k in changed)
                self.audit("threshold.change" if only_thresholds else "settings.change", "settings", changed, conn)


def _settings_changes(stored: dict[str, str], new: dict) -> dict[str, list]:
    """{key: [old, new]} between stored JSON texts (missing = the default) and new values;
    dict settings (thresholds) are compared per entry: ``thresholds.w600k_mbf``."""
    defaults = Settings().to_dict()
    out: dict[str, list] = {}
    for key, value in new.items():
        try:
            old = json.loads(stored[key]) if key in stored else defaults.get(key)
        except ValueError:
            old = None
        if key == "thresholds" and isinstance(value, dict):
            # A model without a stored threshold uses its measured default: show that one.
            before = Settings(thresholds=old if isinstance(old, dict) else {})
            after = Settings(thresholds=value)
            for model in sorted(set(before.thresholds) | set(after.thresholds)):
                a, b = before.threshold_for(model), after.threshold_for(model)
                if a != b:
                    out[f"{key}.{model}"] = [a, b]
        elif old != value:
            out[key] = [old, value]
    return out
