"""Stored measurements: the store, the one reader of labels, import and export."""
