"""A report's files: ``report.md`` (GitHub tables), ``report.html`` (one self-contained page:
sortable tables, plots embedded), ``report.csv`` (one row per label) and ``report.json``
(the data and the speed-ups), with one bar plot per model under ``plots/``."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lenna_core.errors import LennaError
from lenna_core.report.plots import model_plot
from lenna_core.report.views import (
    Cell,
    Table,
    model_table,
    speedup_table,
    speedups,
    system_table,
)

CSV_COLUMNS = ("model", "params", "macs", "input", "batch_size", "target", "backend", "library",
               "device", "machine", "mode", "status", "latency_ms", "low_ms", "high_ms",
               "speedup", "peak_host_mb", "device_mb", "runs", "clean_runs", "error")


def write_report(data: dict[str, Any], out: Path, baseline: str | None, title: str,
                 seconds: float | None = None) -> list[Path]:
    """Write every format of the report into ``out``; returns the files written."""
    ups = speedups(data, baseline)
    tables = [system_table(data), model_table(data), speedup_table(data, ups)]
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LennaError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    plots = {m["name"]: model_plot(data, m["name"]) for m in data["models"]}
    written = []
    for name, png in plots.items():
        if png is not None:
            written.append(_write(out / "plots" / f"{_file_name(name)}.png", png))
    subtitle = _subtitle(data, seconds)
    written.append(_write(out / "report.md", markdown(title, subtitle, tables, plots).encode()))
    written.append(_write(out / "report.html", page(title, subtitle, tables, plots).encode()))
    written.append(_write(out / "report.csv", label_csv(data, ups).encode()))
    document = {**data, "title": title, "seconds": seconds, "speedups": ups}
    written.append(_write(out / "report.json", json.dumps(document, indent=2).encode()))
    return written


def _write(path: Path, content: bytes) -> Path:
    """Write through a temporary file, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return path


def _file_name(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model)


def _subtitle(data: Mapping[str, Any], seconds: float | None) -> str:
    protocol = data.get("protocol")
    how = f"measured with protocol {protocol}" if protocol else "rendered from stored labels"
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    return f"Batch size {data['batch_size']}; modes: {', '.join(data['modes'])}; {how}{took}."


def markdown(title: str, subtitle: str, tables: Sequence[Table],
             plots: Mapping[str, bytes | None]) -> str:
    """The report as GitHub-flavoured Markdown; plots are linked from ``plots/``."""
    lines = [f"# {title}", "", subtitle, ""]
    for table in tables:
        lines += [f"## {table.title}", ""]
        lines.append("| " + " | ".join(table.columns) + " |")
        lines.append("|" + "|".join("---" for _ in table.columns) + "|")
        lines += ["| " + " | ".join(c.text.replace("|", "\\|") for c in row) + " |"
                  for row in table.rows]
        lines += ["", table.note, ""] if table.note else [""]
    shown = [name for name, png in plots.items() if png is not None]
    if shown:
        lines += ["## Plots", ""]
        lines += [f"![{name}](plots/{_file_name(name)}.png)" for name in shown]
        lines.append("")
    return "\n".join(lines)


SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      function key(row) {
        var v = row.cells[column].getAttribute("data-value");
        return v === null || v === "" ? null : (isNaN(Number(v)) ? v : Number(v));
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null) return 1;
        if (y === null) return -1;
        var order = x < y ? -1 : x > y ? 1 : 0;
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.body.setAttribute("data-sortable", "ready");
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.text, th:first-child { text-align: left; }
.note { color: #555; font-size: 13px; }
figure { display: inline-block; margin: 0.5em; }
"""


def page(title: str, subtitle: str, tables: Sequence[Table],
         plots: Mapping[str, bytes | None]) -> str:
    """The report as one HTML page that needs no network: CSS, script and plots inline."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>", f"<p>{e(subtitle)}</p>"]
    for table in tables:
        parts.append(f'<h2>{e(table.title)}</h2><table id="{table.key}" class="sortable">')
        parts.append("<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns)
                     + "</tr></thead><tbody>")
        for row in table.rows:
            cells = "".join(
                f'<td{_align(c)} data-value="{e("" if c.value is None else str(c.value))}">'
                f"{e(c.text)}</td>" for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
        if table.note:
            parts.append(f'<p class="note">{e(table.note)}</p>')
    shown = [(name, png) for name, png in plots.items() if png is not None]
    if shown:
        parts.append('<h2>Plots</h2><div id="plots">')
        parts += [f'<figure><img alt="{e(name)}" src="data:image/png;base64,'
                  f'{base64.b64encode(png).decode()}"></figure>' for name, png in shown]
        parts.append("</div>")
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _align(cell: Cell) -> str:
    """Numbers right, text left."""
    return "" if isinstance(cell.value, int | float) else ' class="text"'


def label_csv(data: Mapping[str, Any], ups: Sequence[Mapping[str, Any]]) -> str:
    """One row per label with its model's and target's facts, the speed-up and the user
    columns."""
    models = {m["name"]: m for m in data["models"]}
    targets = {t["key"]: t for t in data["targets"]}
    up = {(u["model"], u["mode"], u["target"]): u["speedup"] for u in ups}
    extra = list(dict.fromkeys(k for m in data["models"] for k in m.get("columns", {})))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *extra])
    for lb in data["labels"]:
        model, target = models[lb["model"]], targets[lb["target"]]
        facts = {**lb, "params": model.get("params"), "macs": model.get("macs"),
                 "input": model.get("input"), "batch_size": data["batch_size"],
                 "backend": target["backend"], "library": target["library"],
                 "device": target["device"], "machine": target["machine"],
                 "speedup": up.get((lb["model"], lb["mode"], lb["target"]))}
        writer.writerow([*("" if facts.get(c) is None else facts[c] for c in CSV_COLUMNS),
                         *("" if model.get("columns", {}).get(k) is None
                           else model["columns"][k] for k in extra)])
    return buffer.getvalue()
