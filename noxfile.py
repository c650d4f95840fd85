"""Developer sessions: ``nox -s tests`` and ``nox -s lint``."""

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Install LENNA with every extra and run the test suite."""
    session.install("-e", ".[all,test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
