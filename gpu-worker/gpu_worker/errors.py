"""Errors that end a job for good: retrying on this pod, or another one like it, cannot help."""


class FatalJobError(Exception):
    """The message is the reason the user sees."""
