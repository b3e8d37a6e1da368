"""Latency and fidelity measurement, and reports."""
