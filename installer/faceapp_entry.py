"""Entry point of the frozen (PyInstaller) application: the same ``faceapp`` command.

A windowed Windows build has no console, so ``sys.stdout``/``sys.stderr`` are None there;
they point at the null device so that printing and logging cannot fail.
"""

import os
import sys

if sys.stdout is None or sys.stderr is None:
    _null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stdout or _null
    sys.stderr = sys.stderr or _null

from faceapp.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
