"""Small file-system helpers shared by the installer, the backup and the exports (plain Python)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from faceapp.core.errors import FaceAppError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; leftovers are then never removed automatically
    fcntl = None


def fsync_dir(folder: Path) -> None:
    """Make renames inside ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[Path]:
    """Write ``dest`` atomically: yields a temporary path in the same folder; when the block
    ends normally the file is flushed to disk and renamed over ``dest``, otherwise removed.
    A crash or a full disk never leaves a half-written file under the final name. The
    temporary file is owner-only (0600) and locked while in use; the leftovers of a killed
    earlier write to ``dest`` (unlocked temporaries and their SQLite journals) are removed first."""
    dest = Path(dest)
    remove_leftovers(dest.parent, (f".{dest.name}.*.tmp", f".{dest.name}.*.tmp-journal"))
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    _lock(fd)  # from here on a cleaner in another process sees it in use
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        with contextlib.suppress(OSError):
            Path(name + "-journal").unlink()
        raise
    finally:
        os.close(fd)
    fsync_dir(dest.parent)


# -- leftovers of killed processes --------------------------------------------------------------------
LOCK_NAME = ".lock"


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _in_use(path: Path) -> bool:
    """True while another process holds the lock of ``path`` (a file, or a folder's .lock file)."""
    target = path / LOCK_NAME if path.is_dir() else path
    if fcntl is None:
        return True  # without locks, never remove what might be in use
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def private_workdir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new owner-only (0700) folder in ``parent``, locked while the block runs and removed
    after it; a process killed inside the block leaves it unlocked, so :func:`remove_leftovers`
    knows it may go."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(work / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.lstat().st_size


def remove_leftovers(folder: Path, patterns: tuple[str, ...]) -> list[tuple[Path, int]]:
    """Remove what killed faceapp processes left in ``folder`` (names matching ``patterns``,
    not locked by a running process); returns ``(path, bytes)`` of each one removed."""
    removed = []
    try:
        candidates = sorted({p for pattern in patterns for p in Path(folder).glob(pattern)})
    except OSError:
        return removed
    for path in candidates:
        if path.name.endswith("-journal") and path.with_name(path.name[: -len("-journal")]).exists():
            continue  # goes with its temporary file, if that one is stale
        try:
            if path.is_symlink() or _in_use(path):
                continue
            size = _size(path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
                journal = path.with_name(path.name + "-journal")
                if journal.exists():
                    size += journal.stat().st_size
                    journal.unlink()
        except OSError:
            continue
        removed.append((path, size))
    return removed


# -- writing user-named files ------------------------------------------------------------------------
def check_output_target(dest: Path | str, data_folder: Path | str, reserved: tuple[str, ...],
                        own_kind: Callable[[Path], bool], what: str, force: bool = False) -> Path:
    """Refuse to write ``dest`` (raise FaceAppError, one line) when it is, or leads through
    links to, one of the data folder's own files: ``reserved`` names files and folders of the
    data folder (the database and its -wal/-shm even before they exist, models/, backups/...);
    and when it exists and ``own_kind(dest)`` says it is not a ``what`` (a replaced spreadsheet
    is lost; ``force`` allows that). Returns ``dest``."""
    dest = Path(dest)
    home = Path(os.path.realpath(data_folder))
    real = Path(os.path.realpath(dest))
    # Each reserved entry as named and where it leads (models/ may be a link to a shared folder).
    protected = [home / name for name in reserved] + [Path(os.path.realpath(home / name)) for name in reserved]
    if real == home or any(real == p or p in real.parents for p in protected) or (
            real.parent == home and real.name.startswith(".")):
        raise FaceAppError(f"'{dest}' is a file of the data folder {data_folder}; write the {what} elsewhere")
    if dest.exists() or dest.is_symlink():
        try:
            st = dest.stat()
        except OSError:
            st = None
        for p in protected:
            try:
                if st is not None and os.path.samefile(p, dest):
                    raise FaceAppError(f"'{dest}' is a link to {p.name} of the data folder {data_folder}; "
                                       f"write the {what} elsewhere")
            except OSError:
                continue
        if dest.is_dir():
            if own_kind(dest):
                return dest
            raise FaceAppError(f"'{dest}' is a folder, not a {what}; give another name")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise FaceAppError(f"'{dest}' is not a regular file; give a file name for the {what}")
        if not force and not own_kind(dest):
            raise FaceAppError(f"'{dest}' exists and is not a {what}; choose another name, or add --force "
                               f"to replace it")
    return dest


def looks_like_csv(path: Path) -> bool:
    """True for an existing ``.csv`` file whose start is UTF-8 text (what our exports write)."""
    import codecs

    path = Path(path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except (OSError, UnicodeDecodeError):
        return False
    return b"\x00" not in head


def looks_like_zip(path: Path) -> bool:
    """True for an existing ``.zip`` file that is a zip archive."""
    import zipfile

    path = Path(path)
    return path.suffix.lower() == ".zip" and path.is_file() and zipfile.is_zipfile(path)


def is_empty_folder(path: Path) -> bool:
    path = Path(path)
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def claim_new_file(folder: Path, stem: str, suffix: str) -> Path:
    """Create and return a new empty owner-only file ``folder/stem[-N]suffix`` that did not exist
    before (exclusive create: two processes in the same second never get the same name)."""
    for n in range(1, 10000):
        path = Path(folder) / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return path
    raise FaceAppError(f"too many files named {stem}* in {folder}")


def make_private(*paths: Path) -> None:
    """chmod each existing path to owner-only (0700 for folders, 0600 for files), whatever the
    umask gave it; links are left alone. A no-op where chmod means nothing."""
    for path in paths:
        path = Path(path)
        try:
            if path.is_symlink() or not path.exists():
                continue
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
        except OSError:
            pass


def make_tree_private(root: Path) -> None:
    """:func:`make_private` for ``root`` and everything under it."""
    root = Path(root)
    make_private(root, *root.rglob("*"))


def give_back(folder: Path, uid: int, gid: int) -> None:
    """After root worked in someone's data folder: the files it left at the top of ``folder``
    (a new -wal, a safety copy folder...) go back to that owner, or the owner could no longer open them."""
    if not hasattr(os, "lchown"):
        return
    for path in Path(folder).iterdir():
        try:
            if path.lstat().st_uid != uid:
                os.lchown(path, uid, gid)
        except OSError:
            continue


def others_can_read(path: Path) -> bool:
    """True if users other than the owner may read or enter ``path``."""
    try:
        return bool(Path(path).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (mode 0600)."""
    path = Path(path)
    with replacing(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_text(text, encoding="utf-8")
