"""Refusals a user can act on (a bad config, input, output directory, teacher or cache): each is one line, and
the entry points print it as `error: ...` and exit 2. A leaf module, so every layer raises the same types."""


class UserError(Exception):
    """The base of every refusal the entry points report in one line (`distill.common.cli.run_entry_point`)."""


class InputError(UserError, ValueError):
    """A problem with the input as a whole (one line, names the file)."""
