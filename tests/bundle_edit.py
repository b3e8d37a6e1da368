"""Editing a copied bundle's manifest by hand, for the bundle tests that tamper with one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def edit_manifest(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
