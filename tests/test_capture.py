"""faceapp.capture: image loading and frame sources, on real photos and videos (no Qt)."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from faceapp.capture import images as images_mod
from faceapp.capture import (
    IMAGE_SUFFIXES,
    ArraySource,
    CameraSource,
    Frame,
    FrameSource,
    ImageFolderSource,
    ResilientSource,
    SourceError,
    StreamSource,
    VideoFileSource,
    decode_image_bytes,
    iter_image_files,
    load_image,
    open_source,
)
from faceapp.core.errors import FaceAppError, ImageError
from faceapp.core.image import MAX_PIXELS


def _shared_faces() -> Path:
    root = Path(os.environ.get("FACEAPP_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    faces = root / "faces"
    if not (faces / "README.md").is_file():
        pytest.fail(f"shared test photos not found at {faces}: set FACEAPP_SHARED to the folder holding faces/")
    return faces


FACES = _shared_faces()
OBAMA = FACES / "face_recognition_examples" / "Barack_Obama" / "obama.jpg"  # 910x1137 JPEG
BIDEN = FACES / "face_recognition_examples" / "Joe_Biden" / "biden.jpg"
LIN_RGBA = FACES / "face_recognition_examples" / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png"
LFW = sorted((FACES / "lfw_krasserm" / "Ariel_Sharon").glob("*.jpg"))
HAMILTON = FACES / "videos" / "face_recognition_short_hamilton_clip.mp4"


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _is_bgr8(a: np.ndarray) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3


@pytest.fixture(scope="module")
def obama_rgb() -> Image.Image:
    """The real photo as a PIL RGB image, reduced so derived files are quick to write."""
    with Image.open(OBAMA) as im:
        return im.convert("RGB").resize((364, 455), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def obama_bgr(obama_rgb: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(obama_rgb)[:, :, ::-1])


@pytest.fixture(scope="module")
def hamilton_frame_count() -> int:
    cap = cv2.VideoCapture(str(HAMILTON))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n > 200
    return n


# --------------------------------------------------------------------------- images


def test_suffixes() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"} == set(IMAGE_SUFFIXES)
    assert isinstance(IMAGE_SUFFIXES, frozenset)


def test_load_real_jpeg_matches_opencv() -> None:
    img = load_image(OBAMA)
    assert _is_bgr8(img) and img.shape == (1137, 910, 3) and img.flags.c_contiguous and img.flags.writeable
    # Channel order: the same pixels OpenCV's own decoder gives (tiny IDCT differences allowed).
    assert _diff(img, cv2.imread(str(OBAMA))) < 2.0


def test_load_real_rgba_png_composites_on_white(tmp_path: Path) -> None:
    img = load_image(LIN_RGBA)
    assert _is_bgr8(img) and img.shape == (612, 704, 3)
    with Image.open(LIN_RGBA) as im:
        rgba = np.asarray(im.convert("RGBA")).copy()
    # That photo is fully opaque: its colours come through unchanged (RGB -> BGR).
    assert (rgba[:, :, 3] == 255).all() and _diff(img, rgba[:, :, 2::-1]) < 0.01
    # The same photo with a transparent band and a half-transparent band: the first becomes
    # white, the second half photo, half white (alpha compositing on white).
    rgba[:100, :, 3] = 0
    rgba[100:200, :, 3] = 128
    path = tmp_path / "lin_alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = load_image(path).astype(np.float64)
    assert (out[:100] == 255).all()
    bgr = rgba[100:200, :, 2::-1].astype(np.float64)
    expected = bgr * (128 / 255) + 255 * (1 - 128 / 255)
    assert np.abs(out[100:200] - expected).max() <= 1.5
    assert _diff(out[200:].astype(np.uint8), rgba[200:, :, 2::-1]) < 0.01


@pytest.mark.parametrize(
    ("fmt", "suffix", "tolerance"),
    [("PNG", ".png", 0.01), ("BMP", ".bmp", 0.01), ("WEBP", ".webp", 6.0), ("TIFF", ".tif", 0.01),
     ("TIFF", ".tiff", 0.01), ("JPEG", ".jpeg", 4.0)],
)
def test_formats_from_real_photo(tmp_path: Path, obama_rgb: Image.Image, obama_bgr: np.ndarray,
                                 fmt: str, suffix: str, tolerance: float) -> None:
    path = tmp_path / f"obama{suffix}"
    obama_rgb.save(path, fmt)
    img = load_image(path)
    assert _is_bgr8(img)
    assert _diff(img, obama_bgr) <= tolerance


def test_grayscale_and_palette(tmp_path: Path, obama_rgb: Image.Image, obama_bgr: np.ndarray) -> None:
    gray = obama_rgb.convert("L")
    gray.save(tmp_path / "gray.png")
    gray.save(tmp_path / "gray.jpg")
    expected = np.repeat(np.asarray(gray)[:, :, None], 3, axis=2)
    assert _diff(load_image(tmp_path / "gray.png"), expected) == 0.0
    assert _diff(load_image(tmp_path / "gray.jpg"), expected) < 3.0
    obama_rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(tmp_path / "palette.png")
    assert _diff(load_image(tmp_path / "palette.png"), obama_bgr) < 8.0
    obama_rgb.convert("1").save(tmp_path / "bilevel.png")
    bilevel = load_image(tmp_path / "bilevel.png")
    assert _is_bgr8(bilevel) and set(np.unique(bilevel)) <= {0, 255}


def test_16bit_png(tmp_path: Path, obama_bgr: np.ndarray) -> None:
    wide = obama_bgr.astype(np.uint16) * 257
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), wide)
    assert _diff(load_image(tmp_path / "rgb16.png"), obama_bgr) < 1.0
    gray = cv2.cvtColor(obama_bgr, cv2.COLOR_BGR2GRAY)
    assert cv2.imwrite(str(tmp_path / "gray16.png"), gray.astype(np.uint16) * 257)
    assert _diff(load_image(tmp_path / "gray16.png"), np.repeat(gray[:, :, None], 3, axis=2)) < 1.0


def test_rgba_png_from_real_photo(tmp_path: Path, obama_rgb: Image.Image, obama_bgr: np.ndarray) -> None:
    rgba = obama_rgb.convert("RGBA")
    alpha = np.full(obama_bgr.shape[:2], 255, np.uint8)
    alpha[:50, :] = 0  # a transparent band across the top
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    assert (img[:50] == 255).all()
    assert _diff(img[50:], obama_bgr[50:]) == 0.0


def test_cmyk_jpeg_colours(tmp_path: Path, obama_rgb: Image.Image, obama_bgr: np.ndarray) -> None:
    path = tmp_path / "cmyk.jpg"
    obama_rgb.convert("CMYK").save(path, "JPEG", quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    img = load_image(path)
    assert _is_bgr8(img)
    assert _diff(img, obama_bgr) < 8.0  # colours right, not inverted or channel-swapped


def test_animated_gif_gives_first_frame(tmp_path: Path, obama_rgb: Image.Image, obama_bgr: np.ndarray) -> None:
    with Image.open(BIDEN) as im:
        second = im.convert("RGB").resize(obama_rgb.size)
    path = tmp_path / "anim.gif"
    obama_rgb.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 2
    img = load_image(path)
    second_bgr = np.asarray(second)[:, :, ::-1]
    assert _diff(img, obama_bgr) < 10.0
    assert _diff(img, obama_bgr) < _diff(img, second_bgr) / 3


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path, obama_rgb: Image.Image) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 degrees clockwise to view"
    obama_rgb.save(path, "JPEG", quality=95, exif=exif)
    img = load_image(path)
    h, w = obama_rgb.size[1], obama_rgb.size[0]
    assert img.shape == (w, h, 3)  # swapped
    stored = np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1]  # as stored, ignoring EXIF
    assert stored.shape == (h, w, 3)
    assert _diff(img, cv2.rotate(stored, cv2.ROTATE_90_CLOCKWISE)) < 1.0


def test_non_ascii_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "fotos Ünïcödé"
    folder.mkdir()
    path = folder / "Jérôme_写真 1.jpg"
    shutil.copyfile(OBAMA, path)
    assert load_image(path).shape == (1137, 910, 3)
    assert load_image(str(path)).shape == (1137, 910, 3)


def test_decode_image_bytes(obama_bgr: np.ndarray) -> None:
    img = decode_image_bytes(OBAMA.read_bytes(), "obama.jpg")
    assert img.shape == (1137, 910, 3)
    ok, png = cv2.imencode(".png", obama_bgr)
    assert ok
    assert _diff(decode_image_bytes(png.tobytes()), obama_bgr) == 0.0
    with pytest.raises(ImageError, match="upload.jpg"):
        decode_image_bytes(b"", "upload.jpg")
    with pytest.raises(ImageError, match="upload.jpg"):
        decode_image_bytes(b"hello, not a picture", "upload.jpg")
    with pytest.raises(ImageError, match="half.jpg"):
        data = OBAMA.read_bytes()
        decode_image_bytes(data[: len(data) // 2], "half.jpg")


def test_cv2_fallback_for_formats_pillow_does_not_know(obama_bgr: np.ndarray) -> None:
    ok, hdr = cv2.imencode(".hdr", obama_bgr.astype(np.float32) / 255.0)  # Radiance HDR: OpenCV only
    assert ok
    img = decode_image_bytes(hdr.tobytes(), "scene.hdr")
    assert _is_bgr8(img) and img.shape == obama_bgr.shape
    assert _diff(img, obama_bgr) < 3.0


# bad inputs


def _bad(path: Path, *words: str) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert path.name in message and "\n" not in message, message
    for word in words:
        assert word in message.lower(), message
    return message


def test_missing_file(tmp_path: Path) -> None:
    _bad(tmp_path / "nobody.jpg", "not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "album.jpg").mkdir()
    _bad(tmp_path / "album.jpg", "folder")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    _bad(tmp_path / "empty.jpg", "empty")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("Meeting notes: this is not a photo.\n" * 20)
    _bad(tmp_path / "notes.jpg", "not an image")


def test_truncated_real_jpeg_is_an_error(tmp_path: Path) -> None:
    data = OBAMA.read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    _bad(tmp_path / "half.jpg", "truncated")


def test_truncated_jpeg_is_an_error_even_if_someone_enabled_truncated_loading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = OBAMA.read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _bad(tmp_path / "half.jpg", "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # their setting is left as it was


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    data = LIN_RGBA.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    _bad(tmp_path / "cut.png")


def test_corrupt_middle_of_jpeg(tmp_path: Path) -> None:
    data = bytearray(OBAMA.read_bytes())
    data[600:] = b"\x00" * (len(data) - 600)  # header intact, scan data destroyed
    (tmp_path / "zeros.jpg").write_bytes(bytes(data))
    _bad(tmp_path / "zeros.jpg")


def _png_claiming_size(real_png: bytes, width: int, height: int) -> bytes:
    """A real PNG whose IHDR is patched to claim another size (CRC fixed so it parses)."""
    assert real_png[12:16] == b"IHDR"
    ihdr = bytearray(real_png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return real_png[:16] + bytes(ihdr) + crc + real_png[33:]


@pytest.mark.parametrize("side", [20000, 9000])  # Pillow's own bomb error / only our MAX_PIXELS
def test_huge_png_refused_from_header(tmp_path: Path, obama_bgr: np.ndarray, side: int) -> None:
    assert side * side > MAX_PIXELS
    ok, png = cv2.imencode(".png", obama_bgr[:64, :64])
    path = tmp_path / f"huge{side}.png"
    path.write_bytes(_png_claiming_size(png.tobytes(), side, side))
    # The patched header is what a real huge PNG would say, checksum and all.
    data = path.read_bytes()
    assert struct.unpack(">II", data[16:24]) == (side, side)
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]
    started = time.perf_counter()
    message = _bad(path, "too large")
    assert "megapixels" in message
    # Generous: decoding 400 Mpx would take far longer and over a gigabyte.
    assert time.perf_counter() - started < 5.0


def test_huge_real_bilevel_png(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(path)
    assert path.stat().st_size < 1_000_000
    _bad(path, "too large")


def test_unreadable_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.jpg"
    shutil.copyfile(OBAMA, path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: simulate what a user would get
            def denied(*args: object, **kwargs: object) -> object:
                raise PermissionError(13, "Permission denied", str(path))
            monkeypatch.setattr(images_mod, "open", denied, raising=False)
        _bad(path, "permission")
    finally:
        path.chmod(0o644)


def test_special_file_is_refused(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    _bad(fifo, "regular file")  # and, above all, does not block


def test_image_error_is_a_faceapp_error() -> None:
    assert issubclass(ImageError, FaceAppError)
    assert issubclass(SourceError, FaceAppError)


@settings(max_examples=60, deadline=None, database=None)
@given(cut=st.integers(min_value=1, max_value=13000), junk=st.binary(max_size=64))
def test_damaged_bytes_raise_only_image_error(cut: int, junk: bytes) -> None:
    data = LFW[0].read_bytes()
    try:
        img = decode_image_bytes(data[:cut] + junk, "damaged.jpg")
    except ImageError as exc:
        assert "damaged.jpg" in str(exc) and "\n" not in str(exc)
    else:
        assert _is_bgr8(img)


def test_iter_image_files(tmp_path: Path) -> None:
    for name in ["b.JPG", "a.png", "c.webp", ".hidden.jpg", "notes.txt", "d.gif", "e.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    (tmp_path / "sub.jpg" / "inner.jpg").write_bytes(b"x")
    names = [p.name for p in iter_image_files(tmp_path)]
    assert names == ["a.png", "b.JPG", "c.webp", "d.gif", "e.tiff"]
    with pytest.raises(ImageError, match="nowhere"):
        iter_image_files(tmp_path / "nowhere")


# --------------------------------------------------------------------------- sources


class FakeClock:
    """Time that only moves when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def _drain(source: FrameSource, limit: int = 10_000) -> list[Frame]:
    frames = []
    while len(frames) < limit:
        frame = source.read()
        if frame is None:
            break
        frames.append(frame)
    return frames


def test_video_reads_every_frame_then_eof(hamilton_frame_count: int) -> None:
    src = VideoFileSource(HAMILTON)
    assert isinstance(src, FrameSource) and src.live is False
    src.open()
    try:
        assert src.fps is not None and 29 < src.fps < 31
        frames = _drain(src)
        assert len(frames) == hamilton_frame_count
        assert [f.index for f in frames] == list(range(len(frames)))
        assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
        positions = [f.position for f in frames]
        assert positions[0] == 0.0 and all(b > a for a, b in zip(positions, positions[1:]))
        assert 8.0 < positions[-1] < 10.0
        captured = [f.captured for f in frames]
        assert captured == sorted(captured)
        assert src.read() is None and src.read() is None
    finally:
        src.close()
        src.close()  # idempotent


def test_video_loop_continues_past_eof(hamilton_frame_count: int) -> None:
    src = VideoFileSource(HAMILTON, loop=True)
    src.open()
    try:
        frames = [src.read() for _ in range(hamilton_frame_count + 40)]
    finally:
        src.close()
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(hamilton_frame_count + 40))
    restart = frames[hamilton_frame_count]
    assert restart.position == 0.0 and frames[hamilton_frame_count - 1].position > 8.0
    # The second pass shows the same pictures as the first.
    assert _diff(restart.image, frames[0].image) < 1.0
    assert _diff(frames[hamilton_frame_count + 39].image, frames[39].image) < 1.0


def test_video_realtime_pacing_with_fake_clock() -> None:
    clock = FakeClock()
    src = VideoFileSource(HAMILTON, realtime=True, clock=clock, sleep=clock.sleep)
    src.open()
    try:
        frames = [src.read() for _ in range(31)]
        assert clock.now - 1000.0 == pytest.approx(frames[-1].position, abs=1e-6)
        assert clock.now - 1000.0 == pytest.approx(30 / src.fps, rel=0.02)
        # A consumer that stalls for 5 s gets the next frame at once, then normal pacing:
        # no burst to catch up.
        clock.now += 5.0
        clock.sleeps.clear()
        src.read()
        assert clock.sleeps == []
        src.read()
        assert clock.sleeps == [pytest.approx(1 / src.fps, rel=0.05)]
    finally:
        src.close()


def test_video_not_realtime_never_sleeps() -> None:
    clock = FakeClock()
    src = VideoFileSource(HAMILTON, clock=clock, sleep=clock.sleep)
    src.open()
    try:
        _drain(src, limit=20)
    finally:
        src.close()
    assert clock.sleeps == []


def test_video_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        VideoFileSource(tmp_path / "missing.mp4").open()
    (tmp_path / "fake.mp4").write_text("not a video at all\n" * 50)
    with pytest.raises(SourceError, match="fake.mp4"):
        VideoFileSource(tmp_path / "fake.mp4").open()
    data = HAMILTON.read_bytes()
    (tmp_path / "stub.mp4").write_bytes(data[:2000])
    with pytest.raises(SourceError, match="stub.mp4"):
        VideoFileSource(tmp_path / "stub.mp4").open()
    with pytest.raises(SourceError, match="not open"):
        VideoFileSource(HAMILTON).read()


def test_image_folder_skips_corrupt_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i, src in enumerate(LFW[:3]):
        shutil.copyfile(src, tmp_path / f"{i + 1:02d}_{src.name}")
    data = LFW[3].read_bytes()
    (tmp_path / "02b_truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "02c_text.jpg").write_text("not a photo")
    (tmp_path / ".DS_Store.jpg").write_text("hidden")
    (tmp_path / "readme.txt").write_text("ignored")
    source = ImageFolderSource(tmp_path)
    source.open()
    assert "(5 images)" in source.description
    with caplog.at_level(logging.WARNING, logger="faceapp.capture"):
        frames = _drain(source)
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.image.shape == (250, 250, 3) for f in frames)
    for frame, original in zip(frames, LFW[:3]):
        assert _diff(frame.image, load_image(original)) == 0.0
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "02b_truncated.jpg" in warned and "02c_text.jpg" in warned
    source.close()


def test_image_folder_loop_and_pacing(tmp_path: Path) -> None:
    for src in LFW[:2]:
        shutil.copyfile(src, tmp_path / src.name)
    clock = FakeClock()
    source = ImageFolderSource(tmp_path, fps=2.0, loop=True, realtime=True, clock=clock, sleep=clock.sleep)
    source.open()
    frames = [source.read() for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.position for f in frames] == [0.0, 0.5, 0.0, 0.5, 0.0]
    assert clock.sleeps == [pytest.approx(0.5)] * 4
    source.close()


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path).open()
    with pytest.raises(SourceError, match="not found"):
        ImageFolderSource(tmp_path / "gone").open()
    (tmp_path / "bad.jpg").write_text("nope")
    looping = ImageFolderSource(tmp_path, loop=True)
    looping.open()
    with pytest.raises(SourceError, match="nothing readable"):
        looping.read()
    once = ImageFolderSource(tmp_path)
    once.open()
    assert once.read() is None


def test_array_source_replays(obama_bgr: np.ndarray) -> None:
    frames = [obama_bgr, cv2.flip(obama_bgr, 1), cv2.cvtColor(obama_bgr, cv2.COLOR_BGR2GRAY)]
    src = ArraySource(frames, fps=10.0, description="recorded")
    assert src.description == "recorded" and src.fps == 10.0 and src.live is False
    src.open()
    out = _drain(src)
    assert len(out) == 3 and all(_is_bgr8(f.image) for f in out)
    assert [f.position for f in out] == [0.0, 0.1, 0.2]
    assert _diff(out[1].image, frames[1]) == 0.0
    out[0].image[:] = 0  # a consumer drawing on a frame...
    src.open()
    assert _diff(src.read().image, obama_bgr) == 0.0  # ...does not change the replay
    looping = ArraySource(frames, loop=True)
    looping.open()
    assert [looping.read().index for _ in range(7)] == list(range(7))


def test_array_source_normalises_or_rejects_garbage(obama_bgr: np.ndarray) -> None:
    src = ArraySource([obama_bgr.astype(np.float32) / 255.0, np.zeros(10, np.uint8)])
    src.open()
    first = src.read()
    assert _is_bgr8(first.image) and _diff(first.image, obama_bgr) < 1.0
    with pytest.raises(SourceError, match="replay"):
        src.read()


def test_array_source_pacing_fake_clock(obama_bgr: np.ndarray) -> None:
    clock = FakeClock()
    src = ArraySource([obama_bgr] * 4, fps=10.0, realtime=True, clock=clock, sleep=clock.sleep)
    src.open()
    _drain(src)
    assert clock.sleeps == [pytest.approx(0.1)] * 3


class _FakeCapture:
    """Stands in for cv2.VideoCapture to feed CameraSource odd frames."""

    script: list = []

    def __init__(self, *args: object) -> None:
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, *args: object) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def read(self) -> tuple[bool, object]:
        return self.script.pop(0) if self.script else (False, None)

    def release(self) -> None:
        self.released = True


def test_camera_frames_are_normalised_or_rejected(monkeypatch: pytest.MonkeyPatch, obama_bgr: np.ndarray) -> None:
    gray16 = cv2.cvtColor(obama_bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    _FakeCapture.script = [(True, gray16), (True, None), (True, np.zeros((4, 4, 7), np.uint8))]
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture)
    cam = CameraSource(0)
    cam.open()
    frame = cam.read()
    assert _is_bgr8(frame.image) and frame.position is None and frame.index == 0
    with pytest.raises(SourceError, match="webcam 0"):
        cam.read()
    with pytest.raises(SourceError, match="webcam 0"):
        cam.read()
    with pytest.raises(SourceError, match="stopped delivering"):
        cam.read()  # (False, None) from now on: unplugged
    cam.close()
    cam.close()


def test_missing_webcam() -> None:
    cam = CameraSource(99)
    assert cam.live is True and cam.description == "webcam 99"
    with pytest.raises(SourceError, match="webcam 99") as info:
        cam.open()
    assert "\n" not in str(info.value)
    cam.close()


def test_unreachable_stream() -> None:
    src = StreamSource("http://127.0.0.1:1/video.mjpg")
    assert src.live is True
    with pytest.raises(SourceError, match="127.0.0.1:1"):
        src.open()


def test_open_source_parsing(tmp_path: Path) -> None:
    cam = open_source("0")
    assert isinstance(cam, CameraSource) and cam.index == 0 and cam.live
    assert isinstance(open_source(" 2 "), CameraSource)
    rtsp = open_source("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    assert isinstance(rtsp, StreamSource) and rtsp.live
    assert "hunter2" not in rtsp.description and "10.0.0.5:554" in rtsp.description
    assert isinstance(open_source("http://cam.local/video.mjpg"), StreamSource)
    assert isinstance(open_source("HTTPS://cam.local/video"), StreamSource)

    folder = open_source(str(LFW[0].parent), loop=True, realtime=False)
    assert isinstance(folder, ImageFolderSource) and folder.loop and not folder.realtime
    folder.open()
    assert "(10 images)" in folder.description

    single = open_source(str(OBAMA), realtime=False)
    single.open()
    frames = _drain(single)
    assert len(frames) == 1 and frames[0].image.shape == (1137, 910, 3)

    video = open_source(str(HAMILTON))
    assert isinstance(video, VideoFileSource) and video.realtime and not video.loop and not video.live

    for bad in [str(tmp_path / "nothing_here.mp4"), "", "webcam", "-1"]:
        with pytest.raises(SourceError, match="not found: give a webcam number, a video file, a URL"):
            open_source(bad)


# ------------------------------------------------------------------ resilient source


def _real_frames(n: int = 6) -> list[np.ndarray]:
    return [load_image(p) for p in LFW[:n]]


class _Flaky:
    """A real ArraySource that raises after ``fail_after`` frames."""

    live = False

    def __init__(self, frames: list[np.ndarray], fail_after: int | None) -> None:
        self._inner = ArraySource(frames)
        self._fail_after = fail_after
        self.description = "flaky"
        self.fps = 25.0
        self.closed = False

    def open(self) -> None:
        self._inner.open()

    def read(self) -> Frame | None:
        if self._fail_after is not None and self._fail_after == 0:
            raise SourceError("flaky: cable pulled")
        if self._fail_after is not None:
            self._fail_after -= 1
        return self._inner.read()

    def close(self) -> None:
        self.closed = True


def test_resilient_connects_after_failures() -> None:
    frames = _real_frames()
    attempts = []
    seen: list[tuple[str, str | None, float]] = []

    def factory() -> FrameSource:
        attempts.append(1)
        if len(attempts) <= 2:
            raise SourceError(f"cannot open webcam 0 (attempt {len(attempts)})")
        return ArraySource(frames, description="camera replay")

    holder: list[ResilientSource] = []

    def fake_sleep(seconds: float) -> None:
        seen.append((holder[0].state, holder[0].last_error, seconds))

    src = ResilientSource(factory, retry_initial=0.5, retry_max=5.0, sleep=fake_sleep)
    holder.append(src)
    assert isinstance(src, FrameSource)
    assert src.state == "connecting"
    src.open()
    first = src.read()
    assert first is not None and first.index == 0
    assert seen == [("connecting", "cannot open webcam 0 (attempt 1)", 0.5),
                    ("connecting", "cannot open webcam 0 (attempt 2)", 1.0)]
    assert src.state == "running" and src.description == "camera replay" and src.fps == 25.0
    rest = _drain(src)
    assert [f.index for f in rest] == list(range(1, len(frames)))
    assert src.state == "eof"
    assert src.read() is None and src.state == "eof"
    src.close()
    assert src.state == "stopped"


def test_resilient_recovers_after_losing_the_stream() -> None:
    frames = _real_frames()
    made: list[_Flaky] = []

    def factory() -> FrameSource:
        made.append(_Flaky(frames, fail_after=3 if not made else None))
        return made[-1]

    states = []
    src = ResilientSource(factory, retry_initial=0.25, sleep=lambda s: states.append((src.state, s)))
    src.open()
    got = [src.read() for _ in range(3)]
    assert src.state == "running"
    fourth = src.read()  # the flaky source breaks here; the retry starts over from frame 0
    assert states == [("lost", 0.25)]
    assert src.last_error == "flaky: flaky: cable pulled"
    assert made[0].closed and len(made) == 2
    assert src.state == "running"
    assert [f.index for f in got + [fourth]] == [0, 1, 2, 3]  # numbering carries on
    assert _diff(fourth.image, frames[0]) == 0.0
    src.close()
    assert made[1].closed


def test_resilient_backoff_doubles_up_to_max_and_never_raises() -> None:
    delays: list[float] = []
    src: ResilientSource

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 7:
            src.stop()

    def factory() -> FrameSource:
        raise RuntimeError("driver exploded")

    src = ResilientSource(factory, retry_initial=0.5, retry_max=5.0, sleep=sleep)
    assert src.read() is None
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert src.state == "stopped" and src.last_error == "driver exploded"


def test_resilient_live_source_that_ends_is_lost_not_eof() -> None:
    frames = _real_frames(2)
    count = []

    def factory() -> FrameSource:
        count.append(1)
        replay = ArraySource(frames)
        replay.live = True  # a stream that just stops
        return replay

    sleeps = []
    src = ResilientSource(factory, sleep=lambda s: sleeps.append(src.state))
    out = [src.read() for _ in range(5)]
    assert all(f is not None for f in out) and len(count) == 3
    assert sleeps == ["lost", "lost"]


def test_stop_interrupts_backoff_sleep_promptly() -> None:
    def factory() -> FrameSource:
        return CameraSource(99)

    src = ResilientSource(factory, retry_initial=30.0, retry_max=60.0)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(src.read()), daemon=True)
    worker.start()
    deadline = time.monotonic() + 10.0
    while src.last_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.state == "connecting" and "webcam 99" in (src.last_error or "")
    src.stop()
    worker.join(timeout=10.0)  # far below the 30 s backoff it was sleeping in
    assert not worker.is_alive()
    assert result == [None] and src.state == "stopped"
    src.close()


def test_stop_before_reading() -> None:
    src = ResilientSource(lambda: ArraySource(_real_frames(1)))
    src.stop()
    src.open()
    assert src.read() is None and src.state == "stopped"


def test_resilient_over_real_video_reaches_eof() -> None:
    src = ResilientSource(lambda: VideoFileSource(HAMILTON))
    src.open()
    frames = _drain(src)
    assert len(frames) > 200 and src.state == "eof" and src.last_error is None
    assert frames[-1].index == len(frames) - 1
    src.close()
