"""NAS-Bench-201: cells from arch strings in the standard macro network, and their encoding."""
