"""Errors a user can meet: each carries one line written for them, printed once by the CLI."""


class UserError(Exception):
    """A problem the user can fix (bad config, port in use, missing model files); exit code 1."""


class ConfigError(UserError):
    """The configuration cannot be used; exit code 2."""
