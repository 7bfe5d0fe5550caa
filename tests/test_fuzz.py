"""Issue #7: fuzzing. Random mutations of real photos from ../shared/faces go through
``load_image`` and ``engine.analyze_photo``; random arrays of any shape and pixel type go into
``engine.analyze``. The only acceptable failure is a clean ImageError (a FaceAppError):
never a cv2/onnxruntime/PIL exception, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import FACES
from faceapp.capture.images import load_image
from faceapp.core.errors import FaceAppError
from faceapp.core.types import Face

pytestmark = pytest.mark.slow

# Small real files of each kind: LFW and web JPEGs, a PNG with alpha, the 112x112 badge PNG.
SEEDS = [
    FACES / "lfw_krasserm" / "Tony_Blair" / "Tony_Blair_0001.jpg",
    FACES / "lfw_krasserm" / "Colin_Powell" / "Colin_Powell_0002.jpg",
    FACES / "extras" / "insightface_Tom_Hanks_54745.png",
    *sorted((FACES / "five_celebrity").rglob("*.jpg"))[:2],
    *sorted(p for p in FACES.rglob("*.png") if p.stat().st_size < 400_000)[:2],
]
SEED_BYTES = {p.name: p.read_bytes() for p in SEEDS}

FUZZ = settings(max_examples=110, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GARBAGE = settings(max_examples=50, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_seed_files_are_real_photos(engine):
    assert len(SEED_BYTES) >= 5
    for path in SEEDS:
        assert engine.analyze_photo(load_image(path)), f"{path} has no face: a poor fuzzing seed"


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    """A real photo's bytes with 1-4 random edits: byte flips, overwrites, cuts, insertions,
    a duplicated chunk, or a damaged header."""
    name = draw(st.sampled_from(sorted(SEED_BYTES)))
    data = bytearray(SEED_BYTES[name])
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        op = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete", "duplicate", "header"]))
        pos = draw(st.integers(0, max(0, n - 1)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            data[pos:pos + len(chunk)] = chunk
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=256))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 512))]
        elif op == "duplicate":
            length = draw(st.integers(1, 2048))
            data[pos:pos] = data[pos:pos + length]
        elif op == "header":  # sizes, bit depths and chunk lengths live in the first bytes
            at = draw(st.integers(0, min(63, max(0, n - 1))))
            if n:
                data[at] = draw(st.integers(0, 255))
    suffix = draw(st.sampled_from([name[name.rfind("."):], ".jpg", ".png", ".gif", ".bmp"]))
    return suffix, bytes(data)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(case=mutated())
def test_mutated_photos_never_crash_loading_or_the_engine(engine, scratch, case):
    suffix, data = case
    path = scratch / f"mutant{suffix}"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except FaceAppError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    try:
        faces = engine.analyze_photo(image)
    except FaceAppError:
        return
    for face in faces:
        assert isinstance(face, Face) and face.crop.shape == (112, 112, 3)
        assert np.isfinite(face.embedding).all()
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-3


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32,
                          np.float64, np.bool_, np.complex64, np.uint32])


@st.composite
def garbage_frames(draw) -> np.ndarray:
    """Arrays a broken camera driver or a buggy source could hand over."""
    dtype = np.dtype(draw(DTYPES))
    kind = draw(st.sampled_from(["image", "any", "strip"]))
    if kind == "image":
        shape = (draw(st.integers(1, 160)), draw(st.integers(1, 160)), draw(st.sampled_from([1, 2, 3, 4, 5])))
    elif kind == "strip":
        shape = draw(st.sampled_from([(1, 4000, 3), (4000, 1, 3), (3, 2500), (2, 2, 3), (5000, 7, 4)]))
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=24))
    if dtype.kind in "fc":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32 if dtype.itemsize <= 8 else 64)
        if dtype.kind == "f" and dtype.itemsize == 2:
            elements = st.floats(allow_nan=True, allow_infinity=True, width=16)
        return draw(hnp.arrays(dtype, shape, elements=elements, fill=elements))
    return draw(hnp.arrays(dtype, shape))


@GARBAGE
@given(frame=garbage_frames())
def test_garbage_frames_never_crash_the_engine(engine, frame):
    try:
        faces = engine.analyze(frame)
    except FaceAppError:
        return
    assert isinstance(faces, list)
