"""Errors the product reports to its users as a message, never as a traceback."""


class UpdpError(Exception):
    """A problem the user can act on. The message names the file and what is wrong.

    Messages never carry report text or header values: those may be PHI.
    """


class InputError(UpdpError):
    """An input file or folder cannot be used (not DICOM, truncated, unreadable, …)."""
