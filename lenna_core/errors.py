"""Errors that the CLI reports as one line with exit code 2, and the one line of any error."""

from functools import cache


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when there is none (or
    the message cannot be read)."""
    try:
        text = str(exc).strip()
    except Exception:  # noqa: BLE001 - a foreign exception whose __str__ fails
        text = ""
    return text.splitlines()[0] if text else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message``, or the type's name alone when there is none."""
    line = first_line(exc)
    name = type(exc).__name__
    return name if line == name else f"{name}: {line}"


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


@cache
def not_fitted_error() -> type[PredictorError]:
    """The class of the error an unfitted estimator raises: a PredictorError (one CLI line)
    that is also scikit-learn's ``NotFittedError`` when scikit-learn is installed, so its
    checks and ``except NotFittedError`` see it. Scikit-learn is imported on first use only."""
    try:
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    except ImportError:
        bases: tuple[type, ...] = (PredictorError, ValueError, AttributeError)
    else:
        bases = (PredictorError, SklearnNotFittedError)
    return type("NotFittedError", bases, {
        "__module__": __name__, "__doc__": "An estimator used before it was fitted."})
