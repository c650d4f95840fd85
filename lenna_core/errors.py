"""Errors that the CLI reports as one line with exit code 2."""


class LennaError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2


class GraphError(LennaError):
    """An invalid Graph IR: the message names the node and the problem."""


class PluginError(LennaError):
    """A plugin that is unknown, unavailable, duplicated or broken."""


class StoreError(LennaError):
    """A database that is missing, corrupt or not a LENNA store."""


class PredictorError(LennaError):
    """A predictor bundle that cannot be trusted or used."""
