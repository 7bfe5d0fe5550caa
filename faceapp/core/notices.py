"""Third-party notices: what the built application bundles, under which licence.

The About box lists :data:`NOTICES`; the PyInstaller build (installer/faceapp.spec) writes
them, with every bundled distribution's own licence files, into the application folder
(``THIRD-PARTY-NOTICES.txt`` and ``licenses/``). Model weights are never bundled: their
licences are in the model catalogue and shown before a pack is installed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    """One bundled component."""

    name: str
    licence: str  # SPDX expression where there is one
    url: str
    note: str = ""


NOTICES: tuple[Notice, ...] = (
    Notice("faceapp", "MIT", "see LICENSE", "this program"),
    Notice("Qt 6", "LGPL-3.0-only", "https://www.qt.io/download-open-source",
           "dynamically linked shared libraries (PySide6/Qt/lib, Qt6*.dll on Windows) that you may "
           "replace with your own build of the same Qt version; source at download.qt.io"),
    Notice("PySide6 / Shiboken6", "LGPL-3.0-only", "https://pypi.org/project/PySide6-Essentials/",
           "Qt for Python; licence text in licenses/LGPL-3.0.txt and licenses/GPL-3.0.txt"),
    Notice("ONNX Runtime", "MIT", "https://github.com/microsoft/onnxruntime",
           "its own third-party notices are in licenses/onnxruntime/"),
    Notice("OpenCV (opencv-python)", "Apache-2.0", "https://github.com/opencv/opencv-python",
           "the wheel bundles FFmpeg (LGPL-2.1) and other libraries: licenses/opencv-python/"),
    Notice("insightface (code)", "MIT", "https://github.com/deepinsight/insightface",
           "the code only; insightface model weights are NOT bundled and are for non-commercial "
           "research use only"),
    Notice("NumPy", "BSD-3-Clause", "https://numpy.org",
           "bundles OpenBLAS (BSD-3-Clause) and the GCC Fortran runtime (GPL-3.0 with the GCC "
           "Runtime Library Exception)"),
    Notice("SciPy", "BSD-3-Clause", "https://scipy.org", "used by insightface"),
    Notice("scikit-image", "BSD-3-Clause", "https://scikit-image.org", "used by insightface"),
    Notice("ONNX", "Apache-2.0", "https://github.com/onnx/onnx", "used by insightface"),
    Notice("Pillow", "MIT-CMU", "https://python-pillow.github.io"),
    Notice("sqlite-utils", "Apache-2.0", "https://github.com/simonw/sqlite-utils"),
    Notice("SQLite", "public domain", "https://sqlite.org/copyright.html"),
    Notice("platformdirs", "MIT", "https://github.com/tox-dev/platformdirs"),
    Notice("Python", "PSF-2.0", "https://docs.python.org/3/license.html", "the bundled interpreter"),
    Notice("PyInstaller bootloader", "GPL-2.0-or-later WITH Bootloader-exception",
           "https://pyinstaller.org/en/stable/license.html",
           "the exception allows the bundled program to carry its own licence"),
)

MODEL_LICENCES = (
    "Model weights are not part of the application: each model pack has its own licence, "
    "shown before it is installed and by `faceapp models list` (the insightface packs are for "
    "non-commercial research use only)."
)


def render_text(bundled: list[tuple[str, str, str]] = ()) -> str:
    """THIRD-PARTY-NOTICES.txt: the notices, then ``bundled`` rows (distribution, version,
    licence) of everything the build actually contains."""
    lines = ["faceapp - third-party notices", "", MODEL_LICENCES, ""]
    for n in NOTICES:
        lines.append(f"* {n.name} - {n.licence} - {n.url}")
        if n.note:
            lines.append(f"    {n.note}")
    if bundled:
        lines += ["", "Every Python distribution in this build (licence files in licenses/<name>/):", ""]
        width = max(len(name) for name, _, _ in bundled)
        lines += [f"  {name:<{width}}  {version:<12}  {licence}" for name, version, licence in bundled]
    return "\n".join(lines) + "\n"
