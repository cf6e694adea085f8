"""The one error type of the data package: a user error reported in one line."""


class PretrainingDataError(Exception):
    """A user error (bad input, output or flag): reported in one line."""
