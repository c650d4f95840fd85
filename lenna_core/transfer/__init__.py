"""Predicting a device from others: few-shot transfer and per-op profile transfer."""
