"""The typer application that every command module registers its commands on."""

from __future__ import annotations

from typing import Annotated

import typer

from lenna_core import __version__

app = typer.Typer(
    name="lenna",
    help="LENNA: measure neural-network latency on real backends, learn estimators, predict.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lenna {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """LENNA: Latency Estimation for Neural Network Architectures."""
