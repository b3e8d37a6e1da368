"""Row variants of a benchmark matrix: what an extra row of the same artifact means.

A row's ``variant`` is empty for an artifact as exported, says how many layers stayed in float for
a mixed-precision INT8 artifact (still the artifact itself: gated, timed and advised on like any
other), or is :data:`DEVICE_DEFAULT` for the extra OpenVINO row at the device's default precision
on bf16 CPUs — an alternative setting of the fp32 artifact, which gates and advice leave out.
"""

from __future__ import annotations

from typing import Any

DEVICE_DEFAULT = "device default"


def is_device_default(row: dict[str, Any]) -> bool:
    return str(row.get("variant") or "").startswith(DEVICE_DEFAULT)
