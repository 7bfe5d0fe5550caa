"""Exceptions every layer raises; the CLI and GUI turn them into one-line messages."""


class FaceAppError(Exception):
    """Base class: the message is meant for the user, as one line."""


class ImageError(FaceAppError):
    """An image could not be read or is not usable (missing, corrupt, too large...)."""


class NoFaceError(FaceAppError):
    """No face was found where one was required."""


class AmbiguousFaceError(FaceAppError):
    """Several faces of similar size: we cannot tell which one is meant."""


class ModelError(FaceAppError):
    """Model files are missing, corrupt or of an unknown kind."""


class StoreError(FaceAppError):
    """The database refused a change (unknown person, duplicate name, newer schema...)."""


class NotFoundError(StoreError):
    """A person, door or entry named by the user does not exist."""


class DuplicateError(StoreError):
    """A unique value (a person's name, a door's name) is already taken."""


class EmbeddingError(StoreError):
    """An embedding is not a finite unit vector (a damaged template, a bad restore or sync)."""


class SiteError(StoreError):
    """The site (the central PostgreSQL database of several stations) refused a change or a command."""


class SiteUnavailableError(SiteError):
    """The site cannot be reached: administrative changes are refused until it is back."""
