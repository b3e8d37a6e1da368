"""Reading and writing bundles: the directory a device runs with no training stack.

A bundle is untrusted input once it leaves the machine that wrote it, so loading checks the
manifest's schema and that its sections agree (labels, input and output shapes), refuses any
file path that would leave the bundle directory, refuses any file in the directory that the
manifest does not list (a runtime may read it implicitly: OpenVINO's ``.bin``, ONNX external
data), and verifies the sha256 of every listed file before a runtime sees it. The model itself
is checked against the spec and labels when a runner activates it
(:meth:`feredge.runtimes.base.Runner.activate`).

Writing goes to a temporary sibling directory that replaces the destination in one atomic step
(:func:`staged_bundle`), so an interrupted export never leaves a half-written bundle, never a
moment without one, and never replaces a bundle that appeared meanwhile unless asked to.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from feredge.dirswap import RENAME_EXCHANGE, RENAME_NOREPLACE, rename2
from feredge.errors import FeredgeError
from feredge.preprocess.spec import PreprocessSpec

MANIFEST = "manifest.json"
#: 1: one network (the classifier), described by the top-level fields. 2: adds ``networks`` — the
#: classifier plus further networks (the face detector), each with its role, spec, files, parity and
#: runtimes. A schema-1 bundle still loads: its only network is the classifier.
BUNDLE_SCHEMA_VERSION = 2
_REQUIRED_KEYS = ("schema_version", "model", "labels", "spec", "precision", "target", "files", "input")
#: the network every bundle has; its spec, labels, input, output and parity are the manifest's top-level fields
CLASSIFIER = "classifier"
_NETWORK_KEYS = ("kind", "spec", "files", "input", "output", "parity", "runtimes")


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


def network_file_role(network: str, role: str) -> str:
    """The role a file of ``network`` has in the manifest's ``files``: the runner role itself for the
    classifier (``onnx``), prefixed for the others (``detector.onnx``), so readers that look a role up
    across all files (TensorRT's pre-flight, ``Bundle.roles``) never mistake a detector file for the classifier's."""
    return role if network == CLASSIFIER else f"{network}.{role}"


def runner_role_of(file_role: str) -> str:
    """``detector.openvino_xml`` → ``openvino_xml``: the runner role of a manifest file role."""
    return file_role.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Network:
    """One network of a bundle: what it is for, how to feed it, its files, its verification, who runs it.

    ``role``: ``classifier`` (every bundle; its fields mirror the manifest's top level) or
    ``detector`` …; ``kind`` says how its output is read (``classifier``: logits over the labels;
    ``blazeface``: SSD anchors, :mod:`feredge.preprocess.blazeface`). ``spec`` is the kind's own
    spec (a ``PreprocessSpec`` dict, a ``BlazeFaceSpec`` dict). ``files``: runner role (``onnx``,
    ``openvino_xml`` …) → bundle file name, each listed and hashed in the manifest's ``files``.
    ``runtimes``: the runtimes it was verified in at export; empty means any runtime with a file
    for it (the classifier, whose per-runtime parity is the manifest's ``parity``).
    """

    role: str
    kind: str
    spec: dict[str, Any]
    files: dict[str, str]
    input: dict[str, Any]
    output: dict[str, Any] = field(default_factory=dict)
    parity: tuple[dict[str, Any], ...] = ()
    runtimes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's input shape (no batch axis)."""
        return tuple(int(v) for v in self.input["shape"][1:])

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        shape = self.output.get("shape")
        return tuple(int(v) for v in shape[1:]) if shape else None

    @property
    def max_batch(self) -> int | None:
        value = self.input.get("max_batch")
        return int(value) if value is not None else None

    def has(self, role: str) -> bool:
        return role in self.files

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``networks`` entry (the classifier's spec/input/output/parity stay top-level)."""
        entry: dict[str, Any] = {"kind": self.kind, "runtimes": list(self.runtimes)}
        if self.role != CLASSIFIER:
            entry.update(spec=self.spec, files=self.files, input=self.input, output=self.output,
                         parity=list(self.parity))
        return entry


@dataclass
class Bundle:
    root: Path
    manifest: dict[str, Any]

    @property
    def schema_version(self) -> int:
        return int(self.manifest.get("schema_version", 1))

    @property
    def networks(self) -> dict[str, Network]:
        """role → :class:`Network`; a schema-1 bundle has one, the classifier, from its top-level fields."""
        classifier_entry = self.manifest.get("networks", {}).get(CLASSIFIER, {})
        parity = self.manifest.get("parity", {})
        found = {CLASSIFIER: Network(
            role=CLASSIFIER, kind=str(classifier_entry.get("kind", "classifier")), spec=self.manifest["spec"],
            files=self.roles(CLASSIFIER), input=self.manifest["input"], output=self.manifest.get("output") or {},
            parity=tuple(parity.get("results", ())) if isinstance(parity, dict) else (),
            runtimes=tuple(classifier_entry.get("runtimes", ())))}
        for role, entry in self.manifest.get("networks", {}).items():
            if role != CLASSIFIER:
                found[role] = Network(role=role, kind=str(entry["kind"]), spec=dict(entry["spec"]),
                                      files=dict(entry["files"]), input=dict(entry["input"]),
                                      output=dict(entry.get("output") or {}), parity=tuple(entry.get("parity", ())),
                                      runtimes=tuple(entry.get("runtimes", ())))
        return found

    def network(self, role: str = CLASSIFIER) -> Network:
        networks = self.networks
        if role not in networks:
            raise BundleError(f"{self.root}: bundle has no {role} network (has: {', '.join(networks)}); "
                              "re-export it with this feredge to include one")
        return networks[role]

    def network_path(self, network: Network | str, role: str) -> Path:
        """The file of ``network`` that a runner with ``role`` loads."""
        net = self.network(network) if isinstance(network, str) else network
        if role not in net.files:
            raise BundleError(f"{self.root}: {net.role} network has no {role} file "
                              f"(has: {', '.join(sorted(net.files))})")
        return safe_member(self.root, net.files[role])

    def file_precision_of(self, name: str) -> str:
        """The precision recorded for file ``name`` (inferred from its role for older manifests)."""
        entry = self.manifest["files"][name]
        return str(entry.get("precision") or file_precision(str(entry.get("role")), str(self.manifest.get("target")),
                                                             self.precision))

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

    def roles(self, network: str | None = None) -> dict[str, str]:
        """role → file name, e.g. ``{"onnx": "model.onnx", "openvino_xml": "model.xml"}``.

        Without ``network``: every file by its manifest role (a detector's as ``detector.onnx``);
        with one: that network's files by runner role (``onnx``)."""
        out = {entry["role"]: name for name, entry in self.manifest["files"].items()
               if isinstance(entry, dict) and "role" in entry}
        if network is None:
            return out
        if network == CLASSIFIER:
            return {role: name for role, name in out.items() if "." not in role}
        prefix = f"{network}."
        return {role[len(prefix):]: name for role, name in out.items() if role.startswith(prefix)}

    def has(self, role: str) -> bool:
        return role in self.roles()

    def role_precision(self, role: str) -> str:
        """The precision of the file with ``role`` — not always the bundle's: an INT8 OpenVINO bundle
        also carries the fp32 ONNX, which is what ONNX Runtime runs from it."""
        return self.file_precision_of(self.roles()[role])

    def path(self, role: str) -> Path:
        roles = self.roles()
        if role not in roles:
            raise BundleError(f"{self.root}: bundle has no {role} file (has: {', '.join(sorted(roles))})")
        return safe_member(self.root, roles[role])

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Bundle:
        root = Path(path)
        if not os.path.lexists(root):
            restore_interrupted(root)  # an export killed mid-swap (fallback path) left the old bundle aside
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
        bundle._check_members_agree(manifest_path)
        bundle._check_networks(manifest_path)
        if verify:
            bundle.verify()
        return bundle

    def _check_members_agree(self, manifest_path: Path) -> None:
        """The manifest's own sections against each other: labels, declared input and output shapes.

        The model file itself is checked against the spec and labels when a runner activates it
        (:meth:`feredge.runtimes.base.Runner.activate`), for every runtime.
        """
        labels = self.manifest["labels"]
        if (not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels)
                or len(set(labels)) != len(labels)):
            raise BundleError(f"{manifest_path}: labels must be a non-empty list of distinct names")
        declared_in = self.manifest["input"].get("shape") if isinstance(self.manifest["input"], dict) else None
        if declared_in is None:
            raise BundleError(f"{manifest_path}: manifest input section lacks shape")
        if list(declared_in)[1:] != list(self.spec.input_shape):
            raise BundleError(f"{manifest_path}: manifest input shape {declared_in} disagrees with the spec's "
                              f"{list(self.spec.input_shape)} (channels, height, width); re-export the bundle")
        output = self.manifest.get("output")
        if isinstance(output, dict) and output.get("shape") and output["shape"][-1] != len(labels):
            raise BundleError(f"{manifest_path}: manifest output width {output['shape'][-1]} disagrees with its "
                              f"{len(labels)} labels; re-export the bundle")

    def _check_networks(self, manifest_path: Path) -> None:
        """The ``networks`` section: well-formed entries, each file listed in ``files`` under its network's role.

        What is checked here is the manifest against itself; the files' hashes are :meth:`verify`'s,
        and a network's model against its declared input and output is the runner's, at activation.
        """
        networks = self.manifest.get("networks")
        if networks is None:
            if self.schema_version >= 2:
                raise BundleError(f"{manifest_path}: schema {self.schema_version} manifest lacks its networks section")
            return
        if not isinstance(networks, dict) or CLASSIFIER not in networks:
            raise BundleError(f"{manifest_path}: networks must be an object with a {CLASSIFIER} entry")
        for role, entry in networks.items():
            if not isinstance(entry, dict):
                raise BundleError(f"{manifest_path}: network {role!r} must be an object")
            if role == CLASSIFIER:
                continue
            if not re.fullmatch(r"[a-z][a-z0-9_]*", role):
                raise BundleError(f"{manifest_path}: network role {role!r} must be lower-case letters, digits, _")
            missing = [key for key in _NETWORK_KEYS if key not in entry]
            if missing:
                raise BundleError(f"{manifest_path}: network {role} lacks {', '.join(missing)}")
            files = entry["files"]
            if not isinstance(files, dict) or not files:
                raise BundleError(f"{manifest_path}: network {role} lists no files")
            shape = entry["input"].get("shape") if isinstance(entry["input"], dict) else None
            if not isinstance(shape, list) or len(shape) < 2:
                raise BundleError(f"{manifest_path}: network {role} input section lacks a shape")
            for runner_role, name in files.items():
                listed = self.manifest["files"].get(name)
                want = network_file_role(role, runner_role)
                if not isinstance(listed, dict) or listed.get("role") != want:
                    raise BundleError(f"{manifest_path}: network {role}'s {runner_role} file {name!r} is not listed "
                                      f"in the manifest's files with role {want} (unverified); re-export the bundle")
        for file_role in (r for r in self.roles() if "." in r):
            owner = file_role.split(".", 1)[0]
            if owner not in networks:
                raise BundleError(f"{manifest_path}: a file has role {file_role} but the bundle has no {owner} "
                                  "network; re-export the bundle")

    def verify(self) -> None:
        """Every file in the bundle is listed and matches its sha256; raise on the first problem.

        Checked, in order: every listed name stays inside the bundle; each listed file exists and
        matches its hash; files a listed file makes a runtime read are listed too (the IR's
        ``.bin`` that OpenVINO reads next to ``model.xml`` without being told, an ONNX file's
        external data, which must also stay inside the bundle); no file in the directory is
        unlisted (anything a runtime could read must be hashed).

        Choices: the only unlisted files tolerated are the manifest's own temporary files
        (``.manifest-*.json``, mid-:func:`_write_json_atomic`; nothing reads them). Files a device
        adds (a TensorRT engine) are listed by :meth:`add_file`. A bundle whose manifest lacks the
        ``.bin`` (or any implicitly read file) is refused with a re-export hint rather than loaded
        unverified: old bundles are re-exported, not trusted.
        """
        listed: dict[str, Path] = {}
        for name in self.manifest["files"]:
            listed[PurePosixPath(name).as_posix()] = safe_member(self.root, name)
        for name, entry in self.manifest["files"].items():
            member = safe_member(self.root, name)
            if not member.is_file():
                raise BundleError(f"{self.root}: bundle file {name} is missing")
            expected = entry.get("sha256") if isinstance(entry, dict) else None
            if not expected:
                raise BundleError(f"{self.root}: manifest gives no sha256 for {name}")
            if sha256_file(member) != expected:
                raise BundleError(f"{self.root}: {name} does not match its sha256 in the manifest (tampered?)")
        implicit = self._implicit_members()
        for name in bundle_files(self.root):
            if name == MANIFEST or name in listed or _is_manifest_temp(name):
                continue
            if name in implicit:
                raise BundleError(f"{self.root}: {name}, which {implicit[name]}, is not listed in the manifest "
                                  "(tampered, or written by an older feredge); re-export the bundle")
            raise BundleError(f"{self.root}: {name} is in the bundle but not in its manifest (unverified: added after "
                              "export?); remove it or re-export the bundle")
        for name, why in implicit.items():
            if name not in listed:
                raise BundleError(f"{self.root}: manifest does not list {name}, which {why}; re-export the bundle")

    def _implicit_members(self) -> dict[str, str]:
        """Bundle-relative names a runtime reads because of a listed file → why, for the messages."""
        from feredge.runtimes.onnx_external import external_member, external_tensors

        implicit: dict[str, str] = {}
        for name, entry in self.manifest["files"].items():
            member = safe_member(self.root, name)
            pure = PurePosixPath(name)
            if isinstance(entry, dict) and runner_role_of(str(entry.get("role", ""))) == "openvino_xml":
                implicit[pure.with_suffix(".bin").as_posix()] = f"OpenVINO reads with {name}"
            if pure.suffix == ".onnx" and member.is_file():
                try:
                    tensors = external_tensors(member.read_bytes())
                except ValueError as exc:
                    raise BundleError(f"{self.root}: {name} is not a valid ONNX file ({exc})") from None
                for tensor in tensors:
                    try:
                        location = external_member(member.parent, tensor, member)
                    except FeredgeError as exc:
                        raise BundleError(str(exc)) from None
                    implicit[(pure.parent / location).as_posix()] = f"{name} reads as external data"
        for name in implicit:
            safe_member(self.root, name)
        return implicit

    def update_manifest(self, **changes: Any) -> None:
        """Rewrite the manifest in place, atomically (used when a device adds an engine)."""
        self.manifest.update(changes)
        _write_json_atomic(self.root / MANIFEST, self.manifest)

    def add_file(self, name: str, role: str, **extra: Any) -> None:
        """List (and hash) a file written into the bundle after export: a device's TensorRT engine."""
        member = safe_member(self.root, name)
        self.manifest["files"][name] = {"role": role, "sha256": sha256_file(member),
                                        "bytes": member.stat().st_size, **extra}
        _write_json_atomic(self.root / MANIFEST, self.manifest)


_MANIFEST_TEMP = re.compile(r"^\.manifest-[^/]*\.json$")


def _is_manifest_temp(name: str) -> bool:
    return bool(_MANIFEST_TEMP.match(name))


def bundle_files(root: Path) -> list[str]:
    """Bundle-relative POSIX names of everything under ``root`` that is not a plain directory.

    Symbolic links count as files (to a directory too: they are not followed), as do FIFOs,
    sockets and devices: anything that is not listed is refused.
    """
    found: list[str] = []
    def unreadable(exc: OSError) -> None:  # a directory we cannot list could hide an unlisted file
        raise BundleError(f"{root}: cannot list {exc.filename} ({exc.strerror}); check its permissions")

    for directory, subdirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        base = Path(directory).relative_to(root)
        for name in files:
            found.append((base / name).as_posix())
        for name in subdirs:
            if (Path(directory) / name).is_symlink():
                found.append((base / name).as_posix())
    return sorted(found)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: roles whose file is the float graph whatever the bundle's precision: the deploy graph's weights and
#: the verified fp32 ONNX every target starts from (except the onnx target, whose model.onnx is the artifact)
FP32_ROLES = {"weights": None, "onnx": "onnx"}  # role → the target for which it is the bundle's precision


def file_precision(role: str, target: str, precision: str) -> str:
    """The precision of a bundle file by its role (manifests before files recorded it)."""
    if role in FP32_ROLES and target != FP32_ROLES[role]:
        return "fp32"
    return "int8" if role == "qdq_onnx" else precision


def file_entry(path: Path, role: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


# --- staging and the final swap -------------------------------------------------------------------
#
# Sibling names: ``.NAME.staging-PID-XXXX`` (being written, or after the swap: the old bundle being
# removed) and ``.NAME.old-PID-XXXX`` (the fallback swap's backup). The PID lets the next export or
# load tell leftovers of a dead process from work in progress.

#: a dead process's staging directory is removed only once this old: PIDs of another PID namespace
#: (a container sharing the volume) look dead from here, and an export can run for minutes
STALE_STAGING_S = 3600.0
_SIBLING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|old)-(?P<pid>\d+)(?:-.*)?$")


def _siblings(destination: Path, kind: str) -> list[tuple[Path, int]]:
    found = []
    try:
        entries = list(destination.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _SIBLING.match(entry.name)
        if match and match["name"] == destination.name and match["kind"] == kind:
            found.append((entry, int(match["pid"])))
    return found


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


def restore_interrupted(destination: Path) -> Path | None:
    """Put back the bundle an export killed mid-swap left aside; the restored path, or None.

    Only the fallback swap (no ``renameat2``) has such a moment: the old bundle renamed to
    ``.NAME.old-PID-*`` and the new one not yet in place. If ``destination`` is missing and the
    process PID is gone, the newest such backup is renamed back (never over something that
    appeared meanwhile). A read-only directory leaves it for the user, named in the load error.
    """
    if os.path.lexists(destination):
        return None
    backups = sorted((p for p, pid in _siblings(destination, "old") if not _pid_alive(pid)),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for backup in backups:
        if not (backup / MANIFEST).is_file():
            continue
        try:
            _rename_noreplace(backup, destination)
        except FileExistsError:
            return None
        except OSError as exc:
            raise BundleError(f"{destination}: an interrupted export left the previous bundle at {backup} and it "
                              f"cannot be moved back ({exc.strerror}); rename it to {destination.name}") from None
        return destination
    return None


def _clean_leftovers(destination: Path) -> None:
    """Remove dead processes' staging directories (after :data:`STALE_STAGING_S`), and their backups
    once the destination exists again."""
    restore_interrupted(destination)
    for path, pid in _siblings(destination, "staging"):
        if not _pid_alive(pid) and _age(path) > STALE_STAGING_S:
            _remove(path)
    if os.path.lexists(destination):
        for path, pid in _siblings(destination, "old"):
            if not _pid_alive(pid):
                _remove(path)


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _rename_noreplace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` only if nothing is at ``target``; FileExistsError otherwise.

    ``renameat2(RENAME_NOREPLACE)`` where available. Fallback: check, then ``os.rename``, which
    itself fails onto a non-empty directory (ENOTEMPTY/EEXIST) or a file (ENOTDIR); only an
    *empty* directory created between the check and the rename would be replaced there.
    """
    if rename2(source, target, RENAME_NOREPLACE):  # raises FileExistsError (EEXIST) itself
        return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists", str(target))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
        raise


def _replace_existing(staging: Path, destination: Path) -> bool:
    """Swap ``staging`` in for the existing ``destination``; False if the destination vanished.

    ``renameat2(RENAME_EXCHANGE)``: one atomic step, after which the old bundle sits at the
    staging path and is removed. Fallback: old → ``.NAME.old-PID-*``, new → destination, remove
    the backup; a kill between the two renames leaves the backup, which
    :func:`restore_interrupted` (run by :meth:`Bundle.load` and the next export) puts back.
    """
    try:
        if rename2(staging, destination, RENAME_EXCHANGE):
            _remove(staging)
            return True
    except FileNotFoundError:
        return False
    backup = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.old-{os.getpid()}-"))
    try:
        os.replace(destination, backup)  # onto the empty directory just made: allowed
    except FileNotFoundError:
        backup.rmdir()
        return False
    try:
        os.rename(staging, destination)
    except OSError:
        with contextlib.suppress(OSError):
            _rename_noreplace(backup, destination)
        raise
    _remove(backup)
    return True


def _commit(staging: Path, destination: Path, overwrite: bool) -> None:
    """The final step of :func:`staged_bundle`, with the exists/--force decision taken again here."""
    for _attempt in range(3):  # a destination that comes and goes under a concurrent export
        if overwrite and os.path.lexists(destination):
            if destination.is_symlink() or not destination.is_dir():
                raise FeredgeError(f"{destination}: exists and is not a bundle directory (a file or a symbolic "
                                   "link); remove it or export elsewhere")
            if _replace_existing(staging, destination):
                return
            continue
        try:
            _rename_noreplace(staging, destination)
            return
        except FileExistsError:
            if not overwrite:
                raise FeredgeError(f"{destination}: appeared while exporting (another export?) and was left as it "
                                   "is; pass --force to replace it") from None
    raise FeredgeError(f"{destination}: keeps changing under this export (another export running?); try again")


def check_destination(destination: str | Path, *, overwrite: bool = False) -> None:
    """Fail in one line if a bundle cannot be written at ``destination``: something is there and
    ``overwrite`` is not set, or it is a file or a symbolic link. An export calls it before loading the
    model (so a taken ``--output`` costs nothing), :func:`staged_bundle` again before writing, and the
    final rename a last time (``RENAME_NOREPLACE``): the early checks only fail fast."""
    destination = Path(destination)
    if not os.path.lexists(destination):
        return
    if not overwrite:
        raise FeredgeError(f"{destination}: already exists; pass --force to replace it")
    if destination.is_symlink() or not destination.is_dir():
        raise FeredgeError(f"{destination}: exists and is not a bundle directory (a file or a symbolic "
                           "link); remove it or export elsewhere")


@contextmanager
def staged_bundle(destination: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``destination`` atomically.

    Guarantees: if the body raises, the staging directory is removed and ``destination`` is
    untouched; at no moment is there no valid bundle at ``destination`` (Linux: one
    ``renameat2(RENAME_EXCHANGE)``; elsewhere, a backup that :func:`restore_interrupted` puts
    back after a kill); without ``overwrite`` the final rename refuses a destination that
    appeared during the work (``RENAME_NOREPLACE``) — the early check only fails fast.
    """
    destination = Path(destination)
    _clean_leftovers(destination)
    check_destination(destination, overwrite=overwrite)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.staging-{os.getpid()}-"))
    try:
        yield staging
        _commit(staging, destination, overwrite)
    except BaseException:
        _remove(staging)
        raise


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` (the files' entries come hashed: :func:`file_entry`); one without a schema
    version gets this schema's, and the classifier as its only network when it names none."""
    manifest = dict(manifest)
    if "schema_version" not in manifest:  # a manifest of this schema: its one network, unless it lists more
        manifest["schema_version"] = BUNDLE_SCHEMA_VERSION
        manifest.setdefault("networks", {CLASSIFIER: {"kind": "classifier", "runtimes": []}})
    _write_json_atomic(root / MANIFEST, manifest)
