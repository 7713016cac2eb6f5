"""Exceptions that carry a user-facing message: what is wrong, where, and how to fix it."""


class MsmError(Exception):
    """Base for errors the CLI shows to the user without a traceback."""


class ConfigError(MsmError):
    """A config file or field is invalid."""


class SpecError(MsmError):
    """A Model Spec file cannot be used."""


class DataError(MsmError):
    """An input dataset file is malformed."""
