"""Install, verify and locate model packs in ``<models_dir>/<pack>/<file>``.

That is the insightface layout: ``FaceAnalysis(name=pack, root=home)`` reads
``<home>/models/<pack>/*.onnx``, so callers pass ``models_dir = <home>/models``.

Only :func:`install_pack` with ``source=None`` touches the network, and only because the
user asked for it; loading a pack (:func:`require_pack`) never downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from faceapp.core.errors import ModelError
from faceapp.core.fsutil import fsync_dir
from faceapp.engine.catalog import AnyPack, ModelFile, all_packs, find_pack

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(label, done_bytes, total_bytes)``; total is 0 when unknown. Raise to cancel."""

CACHE_NAME = ".verified.json"
_CHUNK = 1 << 20
_TIMEOUT = 30.0  # seconds per connect/read, not for the whole download
_MAX_ZIP_BYTES = 1 << 30  # the largest official pack zip (buffalo_l) is ~290 MB
# Temp names must not end in ".onnx": insightface loads every *.onnx in the pack folder.
_PART_SUFFIX = ".part"
_STALE_PART_SECONDS = 3600
_GOOD = ("ok", "size-only")
_SIZE_ONLY = "no published hash: verified by size only"


@dataclass(frozen=True)
class InstalledFile:
    """What :func:`install_pack` did with one file."""

    name: str
    role: str
    path: Path
    action: str  # "installed" | "skipped" (already installed and intact)
    origin: str  # where the bytes came from; "" when skipped
    check: str  # "sha256" | "size-only"


@dataclass(frozen=True)
class InstallReport:
    """Result of :func:`install_pack`."""

    pack: str
    pack_dir: Path
    source: str
    files: tuple[InstalledFile, ...]

    @property
    def installed(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files if f.action == "installed")

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files if f.action == "skipped")

    def summary(self) -> str:
        """One line for the user."""
        parts = []
        if self.installed:
            parts.append(f"installed {', '.join(self.installed)} from {self.source}")
        if self.skipped:
            parts.append(f"already installed: {', '.join(self.skipped)}")
        if any(f.check == "size-only" for f in self.files):
            parts.append(_SIZE_ONLY)
        return f"model pack '{self.pack}' in {self.pack_dir}: " + "; ".join(parts)


@dataclass(frozen=True)
class FileStatus:
    """Verification result of one installed file."""

    name: str
    role: str
    path: Path
    status: str  # "ok" | "missing" | "mismatch" | "size-only"
    detail: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify_pack`."""

    pack: str
    pack_dir: Path
    files: tuple[FileStatus, ...]

    @property
    def ok(self) -> bool:
        """True when every file is present and matches (by hash, or by size if no hash exists)."""
        return all(f.status in _GOOD for f in self.files)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files if f.status == "missing")

    @property
    def mismatched(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files if f.status == "mismatch")


@dataclass(frozen=True)
class PackStatus:
    """One row of :func:`list_packs`."""

    name: str
    installed: bool  # every file is present (intact or not)
    ok: bool  # every file is present and verified
    licence: str
    commercial_use: bool
    description: str
    size: int  # bytes on disk once installed
    backend: str = ""
    recognizer_id: str = ""


# --------------------------------------------------------------------------- public API


def install_pack(
    pack_name: str,
    models_dir: Path,
    source: Path | str | None = None,
    progress: Progress | None = None,
) -> InstallReport:
    """Install ``pack_name`` into ``models_dir/<pack>/`` from a folder, a .zip, or (None) the
    official download URLs. Every file is checked before it is placed; on any error nothing of
    this run is left in the pack folder."""
    pack = find_pack(pack_name)
    pack_dir = Path(models_dir).expanduser() / pack.name
    created = not pack_dir.exists()
    try:
        pack_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create the models folder {pack_dir}: {_reason(e)}") from e
    try:
        return _install(pack, pack_dir, source, progress)
    except BaseException:
        if created:
            # A failed first install leaves no empty pack folder behind to look "installed".
            try:
                pack_dir.rmdir()
            except OSError:
                pass
        raise


def _install(
    pack: AnyPack, pack_dir: Path, source: Path | str | None, progress: Progress | None
) -> InstallReport:
    _remove_stale_parts(pack_dir)

    cache = _HashCache(pack_dir, trusted=False)  # a file edited in place must be replaced, not skipped
    todo: list[ModelFile] = []
    results: dict[str, InstalledFile] = {}
    for mf in pack.files:
        st = _check_file(pack_dir, mf, cache)
        if st.status in _GOOD:
            log.info("%s: %s already installed, skipping", pack.name, mf.name)
            results[mf.name] = InstalledFile(
                mf.name, mf.role, st.path, "skipped", "", _check_kind(mf)
            )
        else:
            if st.status == "mismatch":
                log.warning("%s: replacing %s (%s)", pack.name, mf.name, st.detail)
            todo.append(mf)

    source_desc = "the official source" if source is None else str(source)
    if todo:
        _check_free_space(pack_dir, todo)
        temps: list[Path] = []
        try:
            if source is None:
                staged = _stage_from_network(pack, todo, pack_dir, temps, progress)
            else:
                src = _resolve_source(source)
                source_desc = str(src)
                if src.is_dir():
                    staged = _stage_from_folder(pack, todo, src, pack_dir, temps, progress)
                else:
                    staged = _stage_from_zip(pack, todo, src, pack_dir, temps, progress)
            # Everything is verified: only now does anything appear under its real name.
            for mf, tmp, origin, digest in staged:
                dest = pack_dir / mf.name
                try:
                    os.replace(tmp, dest)
                except OSError as e:
                    raise ModelError(
                        f"cannot place {mf.name} in {pack_dir}: {_reason(e)} "
                        "(close faceapp if it is running and try again)"
                    ) from e
                cache.remember(dest, digest)
                results[mf.name] = InstalledFile(
                    mf.name, mf.role, dest, "installed", origin, _check_kind(mf)
                )
                log.info("%s: installed %s from %s", pack.name, mf.name, origin)
        finally:
            for tmp in temps:
                _unlink_quietly(tmp)
        fsync_dir(pack_dir)
    cache.save()
    return InstallReport(
        pack=pack.name,
        pack_dir=pack_dir,
        source=source_desc,
        files=tuple(results[mf.name] for mf in pack.files),
    )


def verify_pack(pack_name: str, models_dir: Path, trust_cache: bool = False) -> VerifyReport:
    """Check every file of an installed pack against the catalogue: its full sha256, read now.

    ``trust_cache=True`` (listings only) accepts a hash remembered for the same size, mtime and
    inode; that is no protection against a file edited in place with its mtime put back, so
    loading a pack and `models verify` never trust it (16 MB hash in tens of ms)."""
    pack = find_pack(pack_name)
    pack_dir = Path(models_dir).expanduser() / pack.name
    cache = _HashCache(pack_dir, trusted=trust_cache)
    files = tuple(_check_file(pack_dir, mf, cache) for mf in pack.files)
    cache.save()
    return VerifyReport(pack=pack.name, pack_dir=pack_dir, files=files)


def require_pack(pack_name: str, models_dir: Path) -> dict[str, Path]:
    """Paths by role ("detector", "recognizer"; "liveness_<scale>" for a liveness pack) of a verified pack; ModelError with the
    command that fixes it otherwise. Never downloads."""
    report = verify_pack(pack_name, models_dir)
    if report.ok:
        return {f.role: f.path for f in report.files}
    fix = _fix_command(report.pack)
    if report.missing:
        raise ModelError(
            f"model pack '{report.pack}' is not installed (missing {', '.join(report.missing)} "
            f"in {report.pack_dir}); install it with: {fix}"
        )
    bad = "; ".join(f"{f.name}: {f.detail}" for f in report.files if f.status == "mismatch")
    raise ModelError(
        f"model pack '{report.pack}' in {report.pack_dir} is damaged ({bad}); "
        f"reinstall it with: {fix}"
    )


def list_packs(models_dir: Path) -> list[PackStatus]:
    """Every catalogue pack with its install state under ``models_dir``."""
    rows = []
    for name, pack in all_packs().items():
        report = verify_pack(name, models_dir, trust_cache=True)  # a listing, not a load
        rows.append(
            PackStatus(
                name=name,
                installed=not report.missing,
                ok=report.ok,
                licence=pack.licence,
                commercial_use=pack.commercial_use,
                description=pack.description,
                size=pack.size,
                backend=pack.backend,
                recognizer_id=pack.recognizer_id,
            )
        )
    return rows


# --------------------------------------------------------------------------- verification


def _check_kind(mf: ModelFile) -> str:
    return "sha256" if mf.sha256 else "size-only"


def _check_file(pack_dir: Path, mf: ModelFile, cache: _HashCache) -> FileStatus:
    path = pack_dir / mf.name

    def status(s: str, detail: str = "") -> FileStatus:
        return FileStatus(mf.name, mf.role, path, s, detail)

    try:
        st = path.stat()
    except FileNotFoundError:
        return status("missing")
    except OSError as e:
        return status("mismatch", f"cannot read it: {_reason(e)}")
    if not stat.S_ISREG(st.st_mode):
        return status("mismatch", "not a regular file")
    if st.st_size != mf.size:
        return status("mismatch", f"{st.st_size} bytes, expected {mf.size}")
    if not mf.sha256:
        return status("size-only", _SIZE_ONLY)
    try:
        digest = cache.sha256(path, st)
    except OSError as e:
        return status("mismatch", f"cannot read it: {_reason(e)}")
    if digest != mf.sha256:
        return status("mismatch", f"sha256 {digest[:12]}..., expected {mf.sha256[:12]}...")
    return status("ok")


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class _HashCache:
    """sha256 of installed files in ``<pack>/.verified.json``, keyed by size, mtime and inode,
    so starting the app does not re-hash ~50-200 MB of weights every time."""

    def __init__(self, pack_dir: Path, trusted: bool = True) -> None:
        self.path = pack_dir / CACHE_NAME
        self.trusted = trusted
        self.entries: dict[str, dict] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            files = data.get("files", {}) if isinstance(data, dict) else {}
            self.entries = {
                k: v
                for k, v in files.items()
                if isinstance(v, dict)
                and isinstance(v.get("sha256"), str)
                and isinstance(v.get("key"), list)
            }
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as e:
            log.debug("ignoring unreadable %s: %s", self.path, e)

    def sha256(self, path: Path, st: os.stat_result) -> str:
        entry = self.entries.get(path.name)
        if self.trusted and entry is not None and entry["key"] == _stat_key(st):
            return entry["sha256"]
        t0 = time.perf_counter()
        digest = _hash_file(path)
        log.debug("hashed %s in %.2f s", path, time.perf_counter() - t0)
        # Re-stat: keying on the pre-hash stat would trust a file changed while it was read.
        if _stat_key(path.stat()) == _stat_key(st):
            self.entries[path.name] = {"key": _stat_key(st), "sha256": digest}
            self.dirty = True
        return digest

    def remember(self, path: Path, digest: str) -> None:
        try:
            self.entries[path.name] = {"key": _stat_key(path.stat()), "sha256": digest}
            self.dirty = True
        except OSError:
            pass

    def save(self) -> None:
        if not self.dirty or not self.path.parent.is_dir():
            return
        body = json.dumps({"version": 1, "files": self.entries}, indent=1, sort_keys=True)
        tmp = self.path.with_name(f"{CACHE_NAME}.{os.getpid()}{_PART_SUFFIX}")
        try:
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError as e:
            # A read-only models folder still works; it just re-hashes next time.
            log.debug("cannot write %s: %s", self.path, e)
            _unlink_quietly(tmp)


def _hash_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --------------------------------------------------------------------------- staging

_Staged = tuple[ModelFile, Path, str, str]  # (file, temp path, origin, sha256)


def _stage(
    pack: AnyPack,
    mf: ModelFile,
    stream: BinaryIO,
    origin: str,
    pack_dir: Path,
    temps: list[Path],
    progress: Progress | None,
    fix: str,
) -> _Staged:
    """Copy ``stream`` to a temp file in ``pack_dir`` while hashing it; raise if it is not the
    catalogue's file. The temp file is listed in ``temps`` for the caller to clean up."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{mf.name}.", suffix=_PART_SUFFIX, dir=pack_dir)
    except OSError as e:
        raise ModelError(f"cannot write to {pack_dir}: {_reason(e)}") from e
    tmp = Path(name)
    temps.append(tmp)
    h = hashlib.sha256()
    done = 0
    label = f"installing {mf.name}"
    try:
        with os.fdopen(fd, "wb") as out:
            # Read at most one byte more than expected: enough to prove it is too big.
            while done <= mf.size:
                try:
                    chunk = stream.read(min(_CHUNK, mf.size + 1 - done))
                except (OSError, zipfile.BadZipFile, EOFError) as e:
                    raise ModelError(f"cannot read {mf.name} from {origin}: {_reason(e)}") from e
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(label, min(done, mf.size), mf.size)
            out.flush()
            os.fsync(out.fileno())
    except OSError as e:
        raise ModelError(f"cannot write {mf.name} to {pack_dir}: {_reason(e)}") from e
    digest = h.hexdigest()
    if done != mf.size:
        got = f"more than {mf.size}" if done > mf.size else str(done)
        raise ModelError(
            f"{mf.name} from {origin} has {got} bytes, expected {mf.size} "
            f"(truncated or a different file); nothing was installed; {fix}"
        )
    if mf.sha256 and digest != mf.sha256:
        raise ModelError(
            f"{mf.name} from {origin} is corrupt or a different file (sha256 {digest[:12]}..., "
            f"expected {mf.sha256[:12]}...); nothing was installed; {fix}"
        )
    if not mf.sha256:
        log.warning("%s: %s has %s", pack.name, mf.name, _SIZE_ONLY)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; models may be shared by several accounts
    except OSError:
        pass
    return (mf, tmp, origin, digest)


def _resolve_source(source: Path | str) -> Path:
    if isinstance(source, str) and "://" in source:
        raise ModelError(
            f"--from takes a local folder or .zip file, not a URL ({source}); "
            "leave out --from to download from the official source"
        )
    src = Path(source).expanduser()
    if not src.exists():
        raise ModelError(
            f"model source {src} does not exist; pass a folder or .zip with the model files"
        )
    if src.is_dir():
        return src
    if zipfile.is_zipfile(src):
        return src
    raise ModelError(f"model source {src} is neither a folder nor a .zip file")


def _stage_from_folder(
    pack: AnyPack,
    todo: list[ModelFile],
    root: Path,
    pack_dir: Path,
    temps: list[Path],
    progress: Progress | None,
) -> list[_Staged]:
    found = _find_in_folder(root, pack.name, todo)
    missing = [mf for mf in todo if mf.name not in found]
    if missing:
        names = ", ".join(mf.name for mf in missing)
        raise ModelError(
            f"{names} not found in {root} (looked in {root / pack.name}, "
            f"{root / 'models' / pack.name}, {root} and every folder below it)"
            f"{_where_published(missing)}"
        )
    fix = f"get an intact copy and run: {_fix_command(pack.name, '--from DIR')}"
    staged = []
    for mf in todo:
        path = found[mf.name]
        try:
            size = path.stat().st_size
        except OSError as e:
            raise ModelError(f"cannot read {path}: {_reason(e)}") from e
        if size != mf.size:  # fail before copying anything
            raise ModelError(
                f"{mf.name} in {path.parent} has {size} bytes, expected {mf.size} "
                f"(truncated or a different file); nothing was installed; {fix}"
            )
    for mf in todo:
        path = found[mf.name]
        try:
            f = open(path, "rb")
        except OSError as e:
            raise ModelError(f"cannot read {path}: {_reason(e)}") from e
        with f:
            staged.append(_stage(pack, mf, f, str(path), pack_dir, temps, progress, fix))
    return staged


def _find_in_folder(root: Path, pack_name: str, files: Iterable[ModelFile]) -> dict[str, Path]:
    """Best candidate per file: the usual layouts first, then anywhere below ``root``;
    among candidates the first with the expected size wins."""
    wanted = {mf.name: mf for mf in files}
    candidates: dict[str, list[Path]] = {name: [] for name in wanted}
    for name in wanted:
        for p in (root / pack_name / name, root / "models" / pack_name / name, root / name):
            if p.is_file():
                candidates[name].append(p)

    def has_match(name: str) -> bool:
        return any(_size_or_none(p) == wanted[name].size for p in candidates[name])

    if not all(has_match(name) for name in wanted):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn in wanted:
                    p = Path(dirpath) / fn
                    if p not in candidates[fn] and p.is_file():
                        candidates[fn].append(p)
    best: dict[str, Path] = {}
    for name, paths in candidates.items():
        if paths:
            sized = [p for p in paths if _size_or_none(p) == wanted[name].size]
            best[name] = (sized or paths)[0]
    return best


def _stage_from_zip(
    pack: AnyPack,
    todo: list[ModelFile],
    zip_path: Path,
    pack_dir: Path,
    temps: list[Path],
    progress: Progress | None,
    origin_name: str | None = None,
    fix: str | None = None,
) -> list[_Staged]:
    origin_name = origin_name or str(zip_path)
    fix = fix or f"get an intact copy and run: {_fix_command(pack.name, '--from DIR')}"
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelError(f"cannot open {origin_name} as a zip file: {_reason(e)}") from e
    with zf:
        members = _find_in_zip(zf, pack.name, todo)
        missing = [mf for mf in todo if mf.name not in members]
        if missing:
            names = ", ".join(mf.name for mf in missing)
            raise ModelError(
                f"{names} not found in {origin_name} (searched every member by file name)"
                f"{_where_published(missing)}"
            )
        staged = []
        for mf in todo:
            info = members[mf.name]
            origin = f"{origin_name}:{info.filename}"
            try:
                f = zf.open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError) as e:
                # RuntimeError: encrypted member; NotImplementedError: unknown compression.
                raise ModelError(f"cannot read {origin}: {_reason(e)}") from e
            with f:
                staged.append(_stage(pack, mf, f, origin, pack_dir, temps, progress, fix))
        return staged


def _find_in_zip(
    zf: zipfile.ZipFile, pack_name: str, files: Iterable[ModelFile]
) -> dict[str, zipfile.ZipInfo]:
    wanted = {mf.name: mf for mf in files}
    candidates: dict[str, list[zipfile.ZipInfo]] = {name: [] for name in wanted}
    for info in zf.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or path.parts[:1] == ("__MACOSX",):
            continue
        if path.name in wanted:
            candidates[path.name].append(info)
    best = {}
    for name, infos in candidates.items():
        if not infos:
            continue
        mf = wanted[name]
        # Prefer the catalogued member path, then the right size, then this pack's folder.
        infos.sort(
            key=lambda i: (
                i.filename != mf.member,
                i.file_size != mf.size,
                pack_name not in PurePosixPath(i.filename).parts,
            )
        )
        best[name] = infos[0]
    return best


def _stage_from_network(
    pack: AnyPack,
    todo: list[ModelFile],
    pack_dir: Path,
    temps: list[Path],
    progress: Progress | None,
) -> list[_Staged]:
    by_url: dict[str, list[ModelFile]] = {}
    for mf in todo:
        if not mf.url:
            raise ModelError(
                f"{mf.name} has no official download address; install it with: "
                f"{_fix_command(pack.name)}"
            )
        by_url.setdefault(mf.url, []).append(mf)
    staged: list[_Staged] = []
    # Downloads land next to the pack folder (same disk), never inside it.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=pack_dir.parent) as tdir:
        for url, files in by_url.items():
            fname = PurePosixPath(urllib.parse.urlsplit(url).path).name or "download"
            dest = Path(tdir) / fname
            fix = (
                f"try again, or download {url} yourself and run: "
                f"{_fix_command(pack.name, f'--from {fname}')}"
            )
            if any(mf.member for mf in files):
                _download(url, dest, _MAX_ZIP_BYTES, pack.name, progress)
                staged += _stage_from_zip(pack, files, dest, pack_dir, temps, progress, url, fix)
            else:
                (mf,) = files  # one plain file per URL
                _download(url, dest, mf.size + 1, pack.name, progress)
                with open(dest, "rb") as f:
                    staged.append(_stage(pack, mf, f, url, pack_dir, temps, progress, fix))
                _unlink_quietly(dest)
    return staged


def _download(
    url: str, dest: Path, max_bytes: int, pack_name: str, progress: Progress | None
) -> None:
    """Stream ``url`` to ``dest`` (at most ``max_bytes``)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "file"):
        raise ModelError(f"refusing to download from {url}: only https is allowed")
    label = f"downloading {dest.name}"
    fix = (
        "check the network, or download it yourself and run: "
        f"{_fix_command(pack_name, '--from FILE')}"
    )
    log.info("downloading %s", url)
    req = urllib.request.Request(url, headers={"User-Agent": "faceapp-model-installer"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            if total > max_bytes:
                raise ModelError(f"{url} is {total} bytes, more than expected; not downloading it")
            done = 0
            if progress:
                progress(label, 0, total)
            while chunk := resp.read(_CHUNK):
                done += len(chunk)
                if done > max_bytes:
                    raise ModelError(f"{url} sent more data than expected; stopped the download")
                out.write(chunk)
                if progress:
                    progress(label, done, total)
            if total and done != total:
                raise ModelError(f"download of {url} stopped at {done} of {total} bytes; {fix}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise ModelError(f"could not download {url}: {_reason(reason)}; {fix}") from e


# --------------------------------------------------------------------------- helpers


def _fix_command(pack_name: str, from_arg: str = "--from /path/to/models") -> str:
    return f"faceapp models install --pack {pack_name} {from_arg}"


def _where_published(files: list[ModelFile]) -> str:
    urls = sorted({mf.url for mf in files if mf.url})
    return f"; it is published in {', '.join(urls)}" if urls else ""


def _check_free_space(pack_dir: Path, files: list[ModelFile]) -> None:
    need = sum(mf.size for mf in files)
    try:
        free = shutil.disk_usage(pack_dir).free
    except OSError:
        return
    if free < need + (16 << 20):
        raise ModelError(
            f"not enough disk space in {pack_dir}: the model files need {need / 1e6:.0f} MB, "
            f"{free / 1e6:.0f} MB are free"
        )


def _remove_stale_parts(pack_dir: Path) -> None:
    # Temps of an install that was killed outright; recent ones may belong to a running install.
    cutoff = time.time() - _STALE_PART_SECONDS
    for p in pack_dir.glob(f".*{_PART_SUFFIX}"):
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        log.warning("could not remove temporary file %s: %s", path, e)


def _reason(e: object) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return " ".join(text.split()) or type(e).__name__
