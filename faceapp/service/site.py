"""Many doors, one site: create a site, join/leave it, sync, and keep a station in sync in the
background (:class:`SiteSync`).

A site is a PostgreSQL database (see :mod:`faceapp.store.site_schema`); each station's data
folder is its local replica, through which every read and all recognition keep going, so a
station that loses the site keeps recognizing with what it last had and keeps logging.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Callable, Iterator

from faceapp.core.errors import FaceAppError, SiteError, SiteUnavailableError
from faceapp.service.app import App
from faceapp.store.common import utc_now
from faceapp.store.site_link import (PASSFILE, PullReport, SiteLink, connect, create_schema, push_everything,
                                     set_state, shown_url, site_version, split_password, wait_notifies,
                                     write_passfile)
from faceapp.store.site_schema import CHANNEL, SCHEMA_VERSION

log = logging.getLogger(__name__)

MAX_STATION_NAME = 60
RETRY_MAX = 10.0
PULL_EVERY = 30.0    # a pull even without notification (a lost NOTIFY costs at most this)


@dataclass(frozen=True)
class SiteStatus:
    """What ``faceapp site status`` prints; ``site`` is None when this folder is no station."""

    site: str | None
    station: str | None
    connected: bool
    last_sync: str | None
    pending_entries: int
    pending_audit: int
    people: int
    templates: int
    offline_since: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """``site: connected`` / ``site: offline since 10:02, 3 entries waiting`` / ``site: none``."""
        if self.site is None:
            return "site: none (single PC)"
        if self.connected:
            return "site: connected" + (f", {self.pending_entries} entries waiting" if self.pending_entries else "")
        since = _hhmm(self.offline_since or self.last_sync)
        return f"site: offline{' since ' + since if since else ''}, {self.pending_entries} entries waiting"


def _hhmm(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M")
    except ValueError:
        return ""


def station_name(name: str | None) -> str:
    """A station's name: given, else this computer's host name; printable, at most 60 characters."""
    name = " ".join((name or socket.gethostname() or "station").split())
    if not name or len(name) > MAX_STATION_NAME or any(ord(c) < 32 for c in name):
        raise SiteError(f"a station name needs 1 to {MAX_STATION_NAME} printable characters")
    return name


def _counts(app: App) -> dict[str, int]:
    row = app.store.query(
        "SELECT (SELECT COUNT(*) FROM people) AS people, (SELECT COUNT(*) FROM templates) AS templates, "
        "(SELECT COUNT(*) FROM doors) AS doors, (SELECT COUNT(*) FROM access_groups) AS groups_, "
        "(SELECT COUNT(*) FROM site_outbox WHERE kind = 'entry') AS entries, "
        "(SELECT COUNT(*) FROM site_outbox WHERE kind = 'audit') AS audit")[0]
    return dict(row)


def after_pull(app: App) -> None:
    """Make the app use what a pull brought: site-wide settings and the gallery."""
    app.reload_settings()
    app.invalidate_gallery()


def _become_station(app: App, conninfo: str, name: str, rev: int = 0) -> SiteLink:
    with app.store.transaction(local=True) as conn:
        set_state(conn, url=conninfo, station=name, rev=str(rev), capture="1", joined=utc_now())
        # What was logged here before joining belongs to the site's log too.
        conn.execute("INSERT OR IGNORE INTO site_outbox (kind, uid) SELECT 'entry', uid FROM entries "
                     "WHERE station IS NULL")
        conn.execute("INSERT OR IGNORE INTO site_outbox (kind, uid) SELECT 'audit', uid FROM audit "
                     "WHERE station IS NULL")
    app.store.reload_site()
    assert app.store.site is not None
    return app.store.site


def _forget_site(app: App) -> None:
    with app.store.transaction(local=True) as conn:
        for key in ("url", "station", "rev", "capture", "joined", "last_sync", "last_contact"):
            set_state(conn, **{key: None})
        conn.execute("DELETE FROM site_outbox")
        conn.execute("DELETE FROM site_changes")
    app.store.reload_site()
    (app.paths.home / PASSFILE).unlink(missing_ok=True)


def _store_password(app: App, password: str | None, user: str | None) -> None:
    if password:
        write_passfile(app.paths.home / PASSFILE, user, password)


def create_site(app: App, url: str, import_local: bool = False, station: str | None = None) -> dict[str, int]:
    """Create the site schema in the empty database at ``url``; with ``import_local`` push this data
    folder's people, photos, templates, doors, groups, site settings, entries and audit into it and
    make this folder its first station. Returns the imported row counts."""
    conninfo, password, user = split_password(url)
    if import_local and app.store.site is not None:
        raise SiteError(f"this data folder is already a station of {app.store.site.shown_url}")
    name = station_name(station) if import_local else ""
    pg = connect(url, None, station=name)
    try:
        create_schema(pg)
        counts: dict[str, int] = {}
        if import_local:
            _store_password(app, password, user)
            link = SiteLink(conninfo, app.paths.home / PASSFILE, name)
            with app.store.transaction(local=True) as conn:
                counts = push_everything(conn, pg, link)
            # Nothing else writes to a site being created: everything up to here is already local.
            rev = pg.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM site_rev").fetchone()[0]
            link = _become_station(app, conninfo, name, int(rev))
            app.audit("site.create", {"site": link.shown_url, "station": name, "imported": counts})
            link.sync(app.store, pg)
            counts["entries"] = app.store.query("SELECT COUNT(*) AS n FROM entries")[0]["n"]
        else:
            app.audit("site.create", {"site": shown_url(conninfo)})
        return counts
    finally:
        pg.close()


def join_site(app: App, url: str, station: str | None = None,
              progress: Callable[[int, int], None] | None = None, password: str | None = None) -> PullReport:
    """Make this data folder a station of the site at ``url`` and pull everything it needs.
    ``password``: when not in ``url`` (the window asks for it apart)."""
    store = app.store
    if store.site is not None:
        raise SiteError(f"this data folder is already a station of {store.site.shown_url}; "
                        f"leave it first: faceapp site leave")
    c = _counts(app)
    if c["people"] or c["doors"] or c["groups_"]:
        raise SiteError(f"this data folder already has {c['people']} people, {c['doors']} doors and "
                        f"{c['groups_']} groups; a station takes them from the site: bring them into a new site "
                        f"with: faceapp site create URL --import-local, or join from an empty data folder (--home)")
    name = station_name(station)
    conninfo, in_url, user = split_password(url)
    password = in_url or password
    pg = connect(conninfo, None, station=name, password=password)
    try:
        version = site_version(pg)
        if version is None:
            raise SiteError(f"{shown_url(conninfo)} holds no faceapp site; create one with: faceapp site create URL")
        if version > SCHEMA_VERSION:
            raise SiteError(f"the site was made by a newer faceapp (site schema {version}); upgrade this station")
        _store_password(app, password, user)
        link = _become_station(app, conninfo, name)
        try:
            report = link.pull(store, pg, progress)
            app.audit("site.join", {"site": link.shown_url, "station": name})
            link.sync(store, pg)
        except BaseException:
            _forget_site(app)
            raise
    finally:
        pg.close()
    after_pull(app)
    return report


def leave_site(app: App, force: bool = False) -> int:
    """Stop being a station; the replica stays as this folder's own data. Refuses while entries or
    audit rows wait for the site, unless ``force`` (they are then kept here only). Returns how many
    rows were left behind."""
    link = app.store.site
    if link is None:
        raise SiteError("this data folder is not a station of any site")
    try:
        link.sync(app.store)
    except SiteUnavailableError:
        pass
    c = _counts(app)
    waiting = c["entries"] + c["audit"]
    if waiting and not force:
        raise SiteError(f"{c['entries']} entries and {c['audit']} audit rows have not reached the site yet "
                        f"(it is unreachable); run faceapp site sync when it is back, or leave with --force "
                        f"to keep them on this station only")
    shown = link.shown_url
    _forget_site(app)
    app.audit("site.leave", {"site": shown, "left_behind": waiting})
    return waiting


def site_status(app: App, probe: bool = True) -> SiteStatus:
    """The station's state; ``probe``: try the site now (up to a few seconds when it is unreachable)."""
    link = app.store.site
    c = _counts(app)
    state = {r["key"]: r["value"] for r in app.store.query("SELECT key, value FROM site_state")} if link else {}
    connected = False
    if link is not None and probe:
        try:
            link.connect().close()
            connected = True
            with app.store.transaction(local=True) as conn:
                set_state(conn, last_contact=utc_now())
            state["last_contact"] = utc_now()
        except SiteUnavailableError:
            connected = False
    return SiteStatus(link.shown_url if link else None, link.station if link else None, connected,
                      state.get("last_sync"), c["entries"], c["audit"], c["people"], c["templates"],
                      None if connected else state.get("last_contact"))


def sync_now(app: App) -> tuple[PullReport, int]:
    """Upload what waits and pull what changed, now; SiteError when this is no station."""
    link = app.store.site
    if link is None:
        raise SiteError("this data folder is not a station of any site (faceapp site join URL)")
    report, sent = link.sync(app.store)
    after_pull(app)
    return report, sent


def sync_quietly(app: App) -> None:
    """One sync if this folder is a station and the site answers (before a command, so that it
    works on current data); never raises."""
    if app.store.site is None:
        return
    try:
        sync_now(app)
    except FaceAppError as exc:
        log.info("site: %s", exc)
    except Exception as exc:   # a sync problem must not stop a local command
        log.warning("site sync failed: %s", exc)


class SiteSync:
    """Keeps one station in sync in a background thread: LISTEN for the site's notifications and
    pull at once, upload entries and audit rows as they come, reconnect with backoff.

    ``on_change`` is called (in the thread) after a pull changed something."""

    def __init__(self, app: App, on_change: Callable[[], None] | None = None, tick: float = 1.0) -> None:
        self.app = app
        self.on_change = on_change
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._offline_since: str | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> SiteSync:
        """Start the thread if this folder is a station (else nothing happens)."""
        if self._thread is None and self.app.store.site is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="faceapp-site-sync", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cooperatively; one last upload is tried first."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)

    @contextmanager
    def running(self) -> Iterator[SiteSync]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def status(self) -> SiteStatus:
        """The last known state, without contacting the site."""
        base = site_status(self.app, probe=False)
        with self._lock:
            return SiteStatus(base.site, base.station, self._connected, base.last_sync, base.pending_entries,
                              base.pending_audit, base.people, base.templates,
                              None if self._connected else (self._offline_since or base.offline_since))

    def _set_connected(self, value: bool) -> None:
        with self._lock:
            if value:
                self._offline_since = None
            elif self._connected or self._offline_since is None:
                self._offline_since = utc_now()
            self._connected = value

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            link = self.app.store.site
            if link is None:
                return
            listen = work = None
            try:
                listen = link.connect()
                listen.execute(f"LISTEN {CHANNEL}")
                work = link.connect()
                self._set_connected(True)
                backoff = 1.0
                self._loop(link, listen, work)
            except Exception as exc:   # site gone (psycopg.OperationalError...) or refused
                if self._connected or backoff == 1.0:
                    log.warning("site: offline (%s)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._set_connected(False)
            finally:
                for c in (listen, work):
                    if c is not None:
                        try:
                            c.close()
                        except Exception:
                            pass
            if self._stop.wait(backoff):
                return
            backoff = min(RETRY_MAX, backoff * 2)

    def _loop(self, link: SiteLink, listen, work) -> None:
        self._pull(link, work)
        last_pull = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            woke = not stopping and wait_notifies(listen, self.tick)
            if self._pending():
                link.upload(self.app.store, work)
                with self.app.store.transaction(local=True) as conn:
                    set_state(conn, last_contact=utc_now())
            if stopping:
                return
            if woke or time.monotonic() - last_pull > PULL_EVERY:
                while wait_notifies(listen, 0.05):
                    pass    # a burst of notifications: one pull
                self._pull(link, work)
                last_pull = time.monotonic()

    def _pending(self) -> bool:
        return bool(self.app.store.query("SELECT 1 FROM site_outbox LIMIT 1"))

    def _pull(self, link: SiteLink, work) -> None:
        report = link.pull(self.app.store, work)
        if report.changed or report.deleted:
            after_pull(self.app)
            log.info("site: pulled %d changes, %d deletions (rev %d)", report.changed, report.deleted, report.rev)
            if self.on_change is not None:
                self.on_change()
