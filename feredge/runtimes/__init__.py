"""Runners for every back end behind one interface, and the device-side pipeline (no torch)."""

from feredge.runtimes.base import Runner, TensorMeta
from feredge.runtimes.registry import available_runtimes, resolve_name, runner_class

__all__ = ["Runner", "TensorMeta", "available_runtimes", "resolve_name", "runner_class"]
