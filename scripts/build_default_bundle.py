"""Regenerate the prebuilt default bundle (``feredge/assets/default_bundle``) with the real export.

Runs exactly what ``feredge export --target openvino`` does for the shipped model
(:func:`feredge.export.shipped.export_shipped`: ONNX + OpenVINO IR, fp32, the BlazeFace detector
network, every artifact checked against PyTorch on the 132 real reference faces) and swaps the
result into the package atomically. Run it after changing the shipped weights, the export, the
manifest schema or the spec; ``tests/test_default_bundle.py`` fails until the shipped copy matches
a fresh export again. Needs the training side (``pip install -e '.[train]'``).

    python3 scripts/build_default_bundle.py            # rewrites feredge/assets/default_bundle
    python3 scripts/build_default_bundle.py -o /tmp/b  # somewhere else, to compare
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python3 scripts/build_default_bundle.py` from a checkout
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from feredge.default_bundle import SHIPPED_BUNDLE
    from feredge.export.shipped import export_shipped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, default=SHIPPED_BUNDLE,
                        help=f"bundle directory, replaced if present (default {SHIPPED_BUNDLE})")
    args = parser.parse_args(argv)
    result = export_shipped(args.output, force=True, progress=lambda step: print(f"  {step}...", file=sys.stderr))
    _plain_modes(result.bundle)  # the staging directory is private (0700/0600); package data is world-readable
    size = sum(p.stat().st_size for p in result.bundle.iterdir())
    print(f"wrote {result.bundle}: {len(result.manifest['files'])} files + manifest, {size / 1024:.0f} KiB")
    for parity in result.manifest["parity"]["results"]:
        print(f"  parity {parity['runtime']:<22} max|Δlogit| {parity['max_abs']:.2e} on {parity['samples']} faces")
    return 0


def _plain_modes(root: Path) -> None:
    os.chmod(root, 0o755)
    for path in root.iterdir():
        os.chmod(path, 0o644)


if __name__ == "__main__":
    raise SystemExit(main())
