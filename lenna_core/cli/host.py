"""``lenna plugins`` and ``lenna doctor``: what this installation and this host can do."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lenna_core.cli.app import app
from lenna_core.cli.options import JsonFlag, registry
from lenna_core.cli.tables import print_table

STATUS_COLOURS = {"ok": "green", "warn": "yellow", "bad": "red", "unknown": "dim"}


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the plugins found, with their distribution and availability."""
    rows = registry().rows()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    print_table(["kind", "name", "distribution", "version", "availability"],
                [(r.kind, r.name, r.distribution, r.version,
                  "available" if r.available
                  else f"{'broken' if r.broken else 'unavailable'}: {r.reason}") for r in rows])


@app.command()
def doctor(
    seconds: Annotated[float, typer.Option(
        help="Sampling window of the load, steal, throttling and pressure checks, seconds.")
    ] = 1.0,
    as_json: JsonFlag = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with code 3 when the verdict is warn or bad.")] = False,
) -> None:
    """Say whether this host is fit to measure latency right now, and why not: load, CPU
    frequency, SMT, cgroup quota, steal, memory and CPU pressure (see docs/measurement.md)."""
    from lenna_core.measurement.doctor import diagnose, validate_seconds

    diagnosis = diagnose(validate_seconds(seconds))
    if as_json:
        typer.echo(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        print_table(["check", "status", "value", "detail", "advice"],
                    [(c.name, f"[{STATUS_COLOURS[c.status]}]{c.status}[/]", c.shown_value,
                      c.detail, c.advice) for c in diagnosis.checks],
                    title=f"lenna doctor: {diagnosis.verdict} (window {diagnosis.seconds:g} s)")
    if strict and diagnosis.verdict != "ok":
        raise typer.Exit(3)
