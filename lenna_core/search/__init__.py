"""Latency-aware architecture search."""
