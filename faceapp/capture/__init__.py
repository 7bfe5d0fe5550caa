"""Getting pictures in: image files, webcams, video files, streams and replays (no Qt here)."""

from faceapp.capture.images import IMAGE_SUFFIXES, decode_image_bytes, iter_image_files, load_image
from faceapp.capture.sources import (
    ArraySource,
    CameraSource,
    Frame,
    FrameSource,
    ImageFolderSource,
    ResilientSource,
    SourceError,
    StreamSource,
    VideoFileSource,
    open_source,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ArraySource",
    "CameraSource",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "ResilientSource",
    "SourceError",
    "StreamSource",
    "VideoFileSource",
    "decode_image_bytes",
    "iter_image_files",
    "load_image",
    "open_source",
]
