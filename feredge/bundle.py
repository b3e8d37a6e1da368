"""Reading and writing bundles: the directory a device runs with no training stack.

A bundle is untrusted input once it leaves the machine that wrote it, so loading checks the
manifest's schema, refuses any file path that would leave the bundle directory, and verifies the
sha256 of every listed file before a runtime sees it. Writing goes to a temporary sibling
directory that is renamed into place only when complete, so an interrupted export never leaves a
half-written bundle and never destroys the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from feredge.errors import FeredgeError
from feredge.preprocess.spec import PreprocessSpec

MANIFEST = "manifest.json"
BUNDLE_SCHEMA_VERSION = 1
_REQUIRED_KEYS = ("schema_version", "model", "labels", "spec", "precision", "target", "files", "input")


class BundleError(FeredgeError):
    """The bundle is missing, malformed or tampered with."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def safe_member(root: Path, name: str) -> Path:
    """``root / name`` if ``name`` is a plain relative path that stays inside ``root``."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or "\\" in name or ".." in pure.parts or ":" in name:
        raise BundleError(f"{root}: manifest names a file outside the bundle: {name!r}")
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise BundleError(f"{root}: manifest file {name!r} resolves outside the bundle (symlink?)")
    return resolved


@dataclass
class Bundle:
    root: Path
    manifest: dict[str, Any]

    @property
    def spec(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.manifest["spec"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest["labels"])

    @property
    def model_name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    @property
    def max_batch(self) -> int:
        return int(self.manifest["input"].get("max_batch", 64))

    def roles(self) -> dict[str, str]:
        """role → file name, e.g. ``{"onnx": "model.onnx", "openvino_xml": "model.xml"}``."""
        return {entry["role"]: name for name, entry in self.manifest["files"].items() if "role" in entry}

    def has(self, role: str) -> bool:
        return role in self.roles()

    def path(self, role: str) -> Path:
        roles = self.roles()
        if role not in roles:
            raise BundleError(f"{self.root}: bundle has no {role} file (has: {', '.join(sorted(roles))})")
        return safe_member(self.root, roles[role])

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Bundle:
        root = Path(path)
        if not root.is_dir():
            raise BundleError(f"{root}: not a bundle directory")
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(f"{root}: bundle has no {MANIFEST}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{manifest_path}: malformed manifest ({exc})") from None
        if not isinstance(manifest, dict):
            raise BundleError(f"{manifest_path}: manifest must be a JSON object")
        missing = [key for key in _REQUIRED_KEYS if key not in manifest]
        if missing:
            raise BundleError(f"{manifest_path}: manifest lacks {', '.join(missing)}")
        if not isinstance(manifest["schema_version"], int) or manifest["schema_version"] > BUNDLE_SCHEMA_VERSION:
            raise BundleError(
                f"{manifest_path}: bundle schema {manifest['schema_version']!r} is not supported "
                f"(this feredge reads up to {BUNDLE_SCHEMA_VERSION})"
            )
        if not isinstance(manifest["files"], dict) or not manifest["files"]:
            raise BundleError(f"{manifest_path}: manifest lists no files")
        bundle = cls(root=root, manifest=manifest)
        try:
            bundle.spec  # noqa: B018  (validates the spec)
        except FeredgeError as exc:
            raise BundleError(f"{manifest_path}: {exc}") from None
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        """Check every listed file exists and matches its sha256; raise on the first mismatch."""
        for name, entry in self.manifest["files"].items():
            member = safe_member(self.root, name)
            if not member.is_file():
                raise BundleError(f"{self.root}: bundle file {name} is missing")
            expected = entry.get("sha256") if isinstance(entry, dict) else None
            if not expected:
                raise BundleError(f"{self.root}: manifest gives no sha256 for {name}")
            if sha256_file(member) != expected:
                raise BundleError(f"{self.root}: {name} does not match its sha256 in the manifest (tampered?)")

    def update_manifest(self, **changes: Any) -> None:
        """Rewrite the manifest in place, atomically (used when a device adds an engine)."""
        self.manifest.update(changes)
        _write_json_atomic(self.root / MANIFEST, self.manifest)

    def add_file(self, name: str, role: str, **extra: Any) -> None:
        member = safe_member(self.root, name)
        self.manifest["files"][name] = {"role": role, "sha256": sha256_file(member),
                                        "bytes": member.stat().st_size, **extra}
        _write_json_atomic(self.root / MANIFEST, self.manifest)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def file_entry(path: Path, role: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


@contextmanager
def staged_bundle(destination: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``destination`` atomically.

    If the body raises, the staging directory is removed and ``destination`` is left untouched.
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise FeredgeError(f"{destination}: already exists; pass --force to replace it")
    if destination.exists() and not destination.is_dir():
        raise FeredgeError(f"{destination}: exists and is not a directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.staging-"))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = None
    if destination.exists():
        backup = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.replace(destination, backup)
    os.replace(staging, destination)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Fill in the files' hashes from disk and write ``manifest.json``."""
    manifest = dict(manifest)
    manifest.setdefault("schema_version", BUNDLE_SCHEMA_VERSION)
    _write_json_atomic(root / MANIFEST, manifest)
