"""Benchmark reports: models compared across backends and devices, as Markdown, HTML, CSV
and JSON."""
