"""Model catalogue and installer, on the real weights in ../shared/models (never downloaded)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from faceapp.core.errors import ModelError
from faceapp.engine import installer
from faceapp.engine.catalog import CATALOG, DEFAULT_PACK, get_pack
from faceapp.engine.installer import (
    CACHE_NAME,
    install_pack,
    list_packs,
    require_pack,
    verify_pack,
)

SC_FILES = ("det_500m.onnx", "w600k_mbf.onnx")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    base = Path(
        os.environ.get("FACEAPP_SHARED") or Path(__file__).resolve().parents[1].parent / "shared"
    )
    models = base / "models"
    if not (models / "det_500m.onnx").is_file():
        pytest.fail(
            f"test model weights not found in {models}; set FACEAPP_SHARED to the folder "
            "that holds models/det_500m.onnx etc."
        )
    return models


def _copy(shared: Path, dest: Path, names=SC_FILES) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(shared / name, dest / name)
    return dest


def _flip_byte(path: Path, offset: int = 1000) -> None:
    """Change one byte, keep the size, and move mtime so no timestamp granularity can hide it."""
    st = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _pack_files(pack_dir: Path) -> list[str]:
    """Everything left in a pack folder apart from the hash cache."""
    if not pack_dir.exists():
        return []
    return sorted(p.name for p in pack_dir.iterdir() if p.name != CACHE_NAME)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _with_urls(monkeypatch, pack_name: str, **urls: tuple[str, str | None]) -> None:
    """Point a catalogue pack's files at other URLs (role -> (url, member))."""
    pack = CATALOG[pack_name]
    changes = {
        role: dataclasses.replace(getattr(pack, role), url=url, member=member)
        for role, (url, member) in urls.items()
    }
    monkeypatch.setitem(CATALOG, pack_name, dataclasses.replace(pack, **changes))


# --------------------------------------------------------------------------------------- catalogue


def test_catalog_is_consistent():
    assert DEFAULT_PACK in CATALOG
    assert set(CATALOG) == {"buffalo_sc", "buffalo_s", "buffalo_m", "buffalo_l", "opencv"}
    dims: dict[str, int] = {}
    for name, pack in CATALOG.items():
        assert pack.name == name
        assert (pack.detector.role, pack.recognizer.role) == ("detector", "recognizer")
        assert dims.setdefault(pack.recognizer_id, pack.embedding_dim) == pack.embedding_dim
        for mf in pack.files:
            assert mf.url and mf.url.startswith("https://")
            assert mf.size > 0 and len(mf.sha256) in (0, 64)
            assert not mf.name.startswith(".") and mf.name.endswith(".onnx")
        if pack.backend == "insightface":
            assert not pack.commercial_use and "non-commercial" in pack.licence
    assert CATALOG["opencv"].commercial_use and CATALOG["opencv"].embedding_dim == 128
    assert CATALOG["buffalo_sc"].recognizer_id == CATALOG["buffalo_m"].recognizer_id == "w600k_mbf"
    assert CATALOG["buffalo_l"].recognizer_id == "w600k_r50"


def test_unknown_pack_name(tmp_path):
    for call in (
        lambda: get_pack("buffalo_xl"),
        lambda: install_pack("buffalo_xl", tmp_path),
        lambda: verify_pack("buffalo_xl", tmp_path),
        lambda: require_pack("buffalo_xl", tmp_path),
    ):
        with pytest.raises(ModelError) as e:
            call()
        msg = _one_line(e)
        assert "'buffalo_xl'" in msg and "choose one of: buffalo_sc" in msg
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------- install from folder / zip


@pytest.mark.parametrize("pack_name", ["buffalo_sc", "opencv"])
def test_install_from_shared_folder(shared_models, tmp_path, pack_name):
    models = tmp_path / "home" / "models"
    calls = []
    report = install_pack(pack_name, models, shared_models, progress=lambda *a: calls.append(a))
    pack = get_pack(pack_name)
    names = [mf.name for mf in pack.files]
    assert report.installed == tuple(names) and report.skipped == ()
    assert report.pack_dir == models / pack_name
    assert _pack_files(report.pack_dir) == sorted(names)  # no temp files left
    assert calls and calls[-1][1] == calls[-1][2] == pack.recognizer.size
    assert verify_pack(pack_name, models).ok
    paths = require_pack(pack_name, models)
    assert paths == {
        "detector": models / pack_name / pack.detector.name,
        "recognizer": models / pack_name / pack.recognizer.name,
    }
    assert report.pack in report.summary()


def test_reinstall_skips_intact_files(shared_models, tmp_path):
    install_pack("buffalo_sc", tmp_path, shared_models)
    again = install_pack("buffalo_sc", tmp_path, shared_models)
    assert again.installed == () and again.skipped == SC_FILES
    assert "already installed" in again.summary()
    # Skipping needs no source at all (and no network).
    assert install_pack("buffalo_sc", tmp_path, None).skipped == SC_FILES


def test_install_from_usual_layouts_prefers_right_size(shared_models, tmp_path):
    src = tmp_path / "src"
    _copy(shared_models, src / "models" / "buffalo_sc")
    (src / "det_500m.onnx").write_bytes(b"an older, different file")  # a decoy, wrong size
    report = install_pack("buffalo_sc", tmp_path / "models", src)
    assert report.installed == SC_FILES
    assert verify_pack("buffalo_sc", tmp_path / "models").ok


def test_install_from_zip(shared_models, tmp_path):
    zpath = tmp_path / "weights.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("old/det_500m.onnx", b"decoy with the same name")
        zf.write(shared_models / "det_500m.onnx", "deep/dir/det_500m.onnx", zipfile.ZIP_DEFLATED)
        zf.write(shared_models / "w600k_mbf.onnx", "w600k_mbf.onnx", zipfile.ZIP_STORED)
    report = install_pack("buffalo_sc", tmp_path / "models", zpath)
    assert report.installed == SC_FILES
    assert "deep/dir/det_500m.onnx" in report.files[0].origin
    assert verify_pack("buffalo_sc", tmp_path / "models").ok


# ------------------------------------------------------------------------------------- bad sources


def test_truncated_file_is_refused_and_nothing_placed(shared_models, tmp_path):
    src = _copy(shared_models, tmp_path / "src")
    with open(src / "w600k_mbf.onnx", "r+b") as f:
        f.truncate(1_000_000)
    target = tmp_path / "models"
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", target, src)
    msg = _one_line(e)
    assert "w600k_mbf.onnx" in msg and "1000000 bytes" in msg
    assert "faceapp models install --pack buffalo_sc --from" in msg
    # The intact detector was not placed either: installs are all or nothing.
    assert _pack_files(target / "buffalo_sc") == []


def test_corrupted_file_same_size_is_refused(shared_models, tmp_path):
    src = _copy(shared_models, tmp_path / "src")
    _flip_byte(src / "det_500m.onnx")
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", tmp_path / "models", src)
    msg = _one_line(e)
    assert "det_500m.onnx" in msg and "expected 5e4447f50245" in msg
    assert _pack_files(tmp_path / "models" / "buffalo_sc") == []


def test_corrupted_zip_member_is_refused(shared_models, tmp_path):
    data = bytearray((shared_models / "det_500m.onnx").read_bytes())
    data[5000] ^= 0xFF
    zpath = tmp_path / "bad.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("det_500m.onnx", bytes(data))
        zf.write(shared_models / "w600k_mbf.onnx", "w600k_mbf.onnx")
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", tmp_path / "models", zpath)
    assert "det_500m.onnx" in _one_line(e)
    assert _pack_files(tmp_path / "models" / "buffalo_sc") == []


def test_missing_file_in_folder(shared_models, tmp_path):
    src = _copy(shared_models, tmp_path / "src", names=("det_500m.onnx",))
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", tmp_path / "models", src)
    msg = _one_line(e)
    assert "w600k_mbf.onnx not found in" in msg and str(src) in msg
    assert "det_500m.onnx" not in msg.split("not found")[0]
    assert not (tmp_path / "models" / "buffalo_sc").exists()


def test_missing_file_in_zip(shared_models, tmp_path):
    zpath = tmp_path / "half.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(shared_models / "det_500m.onnx", "det_500m.onnx")
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", tmp_path / "models", zpath)
    msg = _one_line(e)
    assert "w600k_mbf.onnx not found in" in msg and str(zpath) in msg


def test_bad_source_arguments(tmp_path):
    for source, expected in (
        (tmp_path / "nowhere", "does not exist"),
        ("https://example.org/buffalo_sc.zip", "not a URL"),
    ):
        with pytest.raises(ModelError) as e:
            install_pack("buffalo_sc", tmp_path / "models", source)
        assert expected in _one_line(e)
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    with pytest.raises(ModelError, match="neither a folder nor a .zip"):
        install_pack("buffalo_sc", tmp_path / "models", not_zip)


def test_interrupt_leaves_no_partial_file(shared_models, tmp_path):
    target = tmp_path / "models"
    (target / "buffalo_sc").mkdir(parents=True)

    def progress(label, done, total):
        if label == "installing w600k_mbf.onnx" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install_pack("buffalo_sc", target, shared_models, progress=progress)
    assert _pack_files(target / "buffalo_sc") == []


# ------------------------------------------------------------------------- verify / require / list


def test_require_pack_on_empty_dir_names_the_fix(tmp_path):
    with pytest.raises(ModelError) as e:
        require_pack("buffalo_sc", tmp_path / "models")
    msg = _one_line(e)
    assert msg.startswith(
        "model pack 'buffalo_sc' is not installed (missing det_500m.onnx, w600k_mbf.onnx in "
    )
    assert str(tmp_path / "models" / "buffalo_sc") in msg
    assert "install it with: faceapp models install --pack buffalo_sc --from " in msg
    report = verify_pack("buffalo_sc", tmp_path / "models")
    assert not report.ok and report.missing == SC_FILES
    assert [f.status for f in report.files] == ["missing", "missing"]
    assert not (tmp_path / "models").exists()  # checking never creates folders


def test_verify_uses_cache_and_notices_corruption(shared_models, tmp_path, monkeypatch):
    install_pack("buffalo_sc", tmp_path, shared_models)
    pack_dir = tmp_path / "buffalo_sc"
    assert (pack_dir / CACHE_NAME).is_file()

    real_hash = installer._hash_file
    hashed: list[str] = []

    def counting_hash(path):
        hashed.append(path.name)
        return real_hash(path)

    monkeypatch.setattr(installer, "_hash_file", counting_hash)
    assert verify_pack("buffalo_sc", tmp_path, trust_cache=True).ok
    assert hashed == []  # a listing is served from .verified.json
    assert verify_pack("buffalo_sc", tmp_path).ok
    assert sorted(hashed) == ["det_500m.onnx", "w600k_mbf.onnx"]  # verify and load always hash (#11)
    hashed.clear()

    _flip_byte(pack_dir / "w600k_mbf.onnx")
    report = verify_pack("buffalo_sc", tmp_path, trust_cache=True)
    assert hashed == ["w600k_mbf.onnx"]
    assert [f.status for f in report.files] == ["ok", "mismatch"]
    assert not report.ok and report.mismatched == ("w600k_mbf.onnx",)
    assert "expected 9cc6e4a75f0e" in report.files[1].detail
    with pytest.raises(ModelError) as e:
        require_pack("buffalo_sc", tmp_path)
    msg = _one_line(e)
    assert "damaged" in msg and "w600k_mbf.onnx" in msg
    assert "faceapp models install --pack buffalo_sc --from" in msg

    repaired = install_pack("buffalo_sc", tmp_path, shared_models)
    assert repaired.installed == ("w600k_mbf.onnx",) and repaired.skipped == ("det_500m.onnx",)
    assert verify_pack("buffalo_sc", tmp_path).ok


def test_verify_detects_wrong_size_and_missing(shared_models, tmp_path):
    install_pack("buffalo_sc", tmp_path, shared_models)
    (tmp_path / "buffalo_sc" / "det_500m.onnx").unlink()
    with open(tmp_path / "buffalo_sc" / "w600k_mbf.onnx", "ab") as f:
        f.write(b"x")
    report = verify_pack("buffalo_sc", tmp_path)
    assert [f.status for f in report.files] == ["missing", "mismatch"]
    assert "13616100 bytes" in report.files[1].detail


def test_pack_without_published_hash_is_checked_by_size(shared_models, tmp_path, monkeypatch):
    pack = CATALOG["buffalo_sc"]
    monkeypatch.setitem(
        CATALOG,
        "buffalo_sc",
        dataclasses.replace(pack, recognizer=dataclasses.replace(pack.recognizer, sha256="")),
    )
    report = install_pack("buffalo_sc", tmp_path, shared_models)
    assert [f.check for f in report.files] == ["sha256", "size-only"]
    assert "verified by size only" in report.summary()
    vr = verify_pack("buffalo_sc", tmp_path)
    assert vr.ok and vr.files[1].status == "size-only"
    assert vr.files[1].detail == "no published hash: verified by size only"
    # A wrong size is still refused.
    with open(tmp_path / "buffalo_sc" / "w600k_mbf.onnx", "r+b") as f:
        f.truncate(10)
    assert verify_pack("buffalo_sc", tmp_path).files[1].status == "mismatch"


def test_list_packs(shared_models, tmp_path):
    install_pack("opencv", tmp_path, shared_models)
    rows = {r.name: r for r in list_packs(tmp_path)}
    assert list(rows) == [*CATALOG, "minifasnet"]   # the optional liveness pack is listed last
    assert rows["opencv"].installed and rows["opencv"].ok and rows["opencv"].commercial_use
    assert rows["opencv"].size == 232_589 + 38_696_353
    assert not rows["buffalo_sc"].installed and not rows["buffalo_sc"].ok
    assert "non-commercial" in rows["buffalo_l"].licence


# -------------------------------------------------------------------- download path (file:// URLs)


def test_download_zip_and_plain_files(shared_models, tmp_path, monkeypatch):
    zpath = tmp_path / "mirror" / "buffalo_sc.zip"
    zpath.parent.mkdir()
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in SC_FILES:
            zf.write(shared_models / name, name)
    url = zpath.as_uri()
    _with_urls(
        monkeypatch,
        "buffalo_sc",
        detector=(url, "det_500m.onnx"),
        recognizer=(url, "w600k_mbf.onnx"),
    )
    _with_urls(
        monkeypatch,
        "opencv",
        detector=((shared_models / "face_detection_yunet_2023mar.onnx").as_uri(), None),
        recognizer=((shared_models / "face_recognition_sface_2021dec.onnx").as_uri(), None),
    )
    models = tmp_path / "models"
    labels: list[str] = []
    starts: list[str] = []

    def progress(label: str, done: int, total: int) -> None:
        labels.append(label)
        if done == 0:
            starts.append(label)

    for name in ("buffalo_sc", "opencv"):
        report = install_pack(name, models, progress=progress)
        assert report.source == "the official source"
        assert report.installed == tuple(mf.name for mf in CATALOG[name].files)
        assert verify_pack(name, models).ok
    # The zip is fetched once for both of its members.
    assert starts.count("downloading buffalo_sc.zip") == 1
    assert {"downloading face_detection_yunet_2023mar.onnx", "installing w600k_mbf.onnx"} <= set(
        labels
    )
    assert sorted(p.name for p in models.iterdir()) == [
        "buffalo_sc",
        "opencv",
    ]  # no download leftovers


def test_download_failure_is_a_model_error(tmp_path, monkeypatch):
    url = (tmp_path / "gone.zip").as_uri()
    _with_urls(
        monkeypatch,
        "buffalo_sc",
        detector=(url, "det_500m.onnx"),
        recognizer=(url, "w600k_mbf.onnx"),
    )
    with pytest.raises(ModelError) as e:
        install_pack("buffalo_sc", tmp_path / "models")
    msg = _one_line(e)
    assert "could not download" in msg and "faceapp models install --pack buffalo_sc --from" in msg
    assert list((tmp_path / "models").iterdir()) == []


def test_download_refuses_plain_http(tmp_path, monkeypatch):
    url = "http://example.org/buffalo_sc.zip"
    _with_urls(
        monkeypatch,
        "buffalo_sc",
        detector=(url, "det_500m.onnx"),
        recognizer=(url, "w600k_mbf.onnx"),
    )
    with pytest.raises(ModelError, match="only https"):
        install_pack("buffalo_sc", tmp_path / "models")
