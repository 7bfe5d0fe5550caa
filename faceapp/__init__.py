"""faceapp: face-recognition attendance and access control."""

__version__ = "0.1.0"
