"""What CPU ran a benchmark: its name and the ISA extensions that change INT8/BF16 results.

VNNI (``avx512_vnni``/``avx_vnni``) decides whether INT8 needs the overflow fix
(:data:`feredge.quantize.config.OVERFLOW_FIX_FACTOR`); ``avx512_bf16``/``amx_bf16`` make bf16
OpenVINO's default inference precision. Reports say which of these the machine had, because the
same artifact measures differently on a CPU without them.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: the ISA flags reports record, in this order
REPORTED_ISA = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_info() -> dict[str, str]:
    """``{"cpu": model name, "isa": space-separated REPORTED_ISA flags present, or "?"}``."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": cpu, "isa": " ".join(f for f in REPORTED_ISA if f in flags) or "?"}


def has_vnni(isa: str) -> bool:
    return any(flag in isa.split() for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))
