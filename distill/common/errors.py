"""Errors any layer may raise about its input: it imports nothing, so every reader, stage and CLI shares one type."""


class InputError(ValueError):
    """A problem with the input as a whole (one line, names the file)."""
