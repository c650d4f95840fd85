"""``lenna db check``: scan a store for damaged rows, and drop them on request."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lenna_core.cli.app import app
from lenna_core.cli.options import DbOption, JsonFlag, store

db_app = typer.Typer(help="Look after a store.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DAMAGED = 1
"""Exit code of a check that found damage."""


@db_app.command()
def check(
    drop_damaged: Annotated[bool, typer.Option(
        "--drop-damaged", help="Delete the damaged rows and the rows that depend on them (their "
                               "labels are measured again by the next campaign that needs "
                               "them).")] = False,
    as_json: JsonFlag = False,
    db: DbOption = "lenna.db",
) -> None:
    """Read every row of the store as the commands do and list the damaged ones; exit 1 when
    there are any."""
    from lenna_core.data.check import check_store
    from lenna_core.data.check import drop_damaged as drop

    checked = store(db, create=False)
    report = check_store(checked)
    deleted = drop(checked, report) if drop_damaged and report.damage else 0
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "deleted_rows": deleted}, indent=2))
    else:
        for line in report.database:
            typer.echo(f"database: {line}")
        for damage in report.damage:
            typer.echo(f"damaged: {damage.line()}")
        total = sum(report.rows.values())
        found = (f"{len(report.damage)} damaged rows" if report.damage else "no damaged row")
        typer.echo(f"checked {total:,} rows in {len(report.rows)} tables of {db}: {found}"
                   + (f"; deleted {deleted} rows" if deleted else "")
                   + ("; database problems above" if report.database else ""), err=True)
    if not report.ok and not (drop_damaged and not report.database):
        raise typer.Exit(DAMAGED)
