"""The shipped model's bundle, prebuilt in the package, and the per-user cache for anything derived from it.

Why prebuilt: a device installs the core (numpy, OpenCV, ONNX Runtime; no torch), so the default
model cannot be exported where it runs, and even with torch an export takes 10–25 s. The bundle
``feredge/assets/default_bundle`` is exactly what ``feredge export --target openvino`` writes for
the shipped model (ONNX + OpenVINO IR, fp32, with its manifest, hashes and parity against PyTorch
on real faces); ``scripts/build_default_bundle.py`` regenerates it with the real export and
``tests/test_default_bundle.py`` checks it still matches a fresh one.

Why a cache: the package directory is read-only by intent (often by permission too), and the
working directory belongs to the user. A runtime that writes into its bundle (TensorRT adds the
engine it builds for this GPU, :attr:`~feredge.backends.Backend.writes_bundle`) gets a copy of the
shipped bundle in :func:`cache_dir`, and ``feredge export`` without ``--output`` writes there too.

Verified once: :func:`default_bundle` returns a path, and whoever opens it (``Bundle.load``:
``Pipeline.from_bundle``, a runner, ``bench``) checks every hash then; choosing the path reads the
prebuilt manifest's roles only. A cache copy is made from a verified source and verified itself.

Device side: no torch, no export. The one exception is :func:`ensure_default_bundle`'s fallback for an
installation without the prebuilt bundle, which exports it into the cache when torch is installed; it
lives on the training side (:func:`feredge.export.shipped.export_into_cache`), named here by
:data:`SHIPPED_EXPORT` (a lazy reference, as the back-end rows name their builds) and imported only then.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from feredge.backends import load_object
from feredge.bundle import MANIFEST, Bundle, BundleError, safe_member, staged_bundle
from feredge.errors import MissingBackendError
from feredge.version import __version__

#: the prebuilt bundle inside the package (read-only: nothing is ever written here at run time)
SHIPPED_BUNDLE = Path(__file__).resolve().parent / "assets" / "default_bundle"
#: what the shipped bundle is an export of: ``feredge export --target openvino --precision fp32``
SHIPPED_TARGET = "openvino"
SHIPPED_PRECISION = "fp32"
#: the training side's fallback for an installation without it: exports the shipped model into the cache
SHIPPED_EXPORT = "feredge.export.shipped:export_into_cache"


def cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``.

    The XDG base-directory rule written out by hand (platformdirs is not a dependency, and the
    devices feredge targets are Linux): a relative or empty ``XDG_CACHE_HOME`` is ignored, as the
    specification says. macOS and Windows get ``~/.cache`` too rather than their native places.
    """
    value = os.environ.get("XDG_CACHE_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".cache"


def cache_dir() -> Path:
    """This feredge version's cache: a new version re-derives its bundles rather than trusting an old one's."""
    return cache_home() / "feredge" / __version__


def cache_bundle_path(model: str, target: str, precision: str) -> Path:
    """Where a bundle of ``model`` for (``target``, ``precision``) lives in the cache."""
    return cache_dir() / f"{model}-{target}-{precision}"


def shipped_bundle() -> Path:
    """The prebuilt bundle's directory; a one-line :class:`BundleError` when the installation lacks it."""
    if not (SHIPPED_BUNDLE / MANIFEST).is_file():
        raise BundleError(f"{SHIPPED_BUNDLE}: the prebuilt default bundle is missing from this installation "
                          "(reinstall feredge, or pass --bundle DIR)")
    return SHIPPED_BUNDLE


def default_bundle(runtime: str | Iterable[str] = "auto") -> Path:
    """The bundle to run the shipped model with on ``runtime`` (a name, ``auto``, or every runtime a
    command will run it on): the prebuilt one as it is, or, when one of them writes into its
    bundle, a copy of it in the cache (see :func:`cache_copy`)."""
    shipped = shipped_bundle()
    names = [runtime] if isinstance(runtime, str) else list(runtime)
    if not _writes_bundle(shipped, names):
        return shipped  # verified by whoever opens it (Bundle.load), once
    return cache_copy(shipped)


def _writes_bundle(shipped: Path, runtimes: list[str]) -> bool:
    """Whether one of ``runtimes`` writes into the bundle it runs; ``auto`` needs the bundle's roles, read from
    its manifest without hashing the files (the caller's ``Bundle.load`` of the path returned does that)."""
    from feredge.runtimes.registry import auto_runtime, runtime_info

    def resolved(name: str) -> str:
        return auto_runtime(Bundle.load(shipped, verify=False)) if name == "auto" else name

    return any(runtime_info(resolved(name)).writes_bundle for name in runtimes)


def ensure_default_bundle(quiet: bool = False, runtime: str | Iterable[str] = "auto") -> Path:
    """The shipped model's bundle for ``runtime`` (or the runtimes a command runs) when no bundle is given.

    The prebuilt one in the package, as it is (read-only), or its copy in the per-user cache for a
    runtime that writes into its bundle (:func:`default_bundle`). Only an installation without the
    prebuilt bundle (package data left out) exports it, into the cache, which needs the training side;
    a prebuilt bundle that fails to verify is an error where it is opened, never re-exported.
    """
    if (SHIPPED_BUNDLE / MANIFEST).is_file():
        return default_bundle(runtime)
    if importlib.util.find_spec("torch") is None:  # the export below needs it: say so in one line
        raise MissingBackendError(
            f"no --bundle given, and this installation lacks the prebuilt default bundle ({SHIPPED_BUNDLE}); "
            "reinstall feredge, install the training side to export it (pip install 'feredge[train]'), "
            "or pass --bundle DIR")
    export_into_cache: Callable[..., Path] = load_object(SHIPPED_EXPORT)
    return export_into_cache(quiet=quiet)


def cache_copy(source: Path) -> Path:
    """A writable copy of bundle ``source`` in the cache, made once and reused while it still holds
    ``source``'s files (what a runtime added to it, a TensorRT engine, is kept); a copy that no
    longer verifies, or holds other files, is replaced atomically."""
    bundle = Bundle.load(source)
    destination = cache_bundle_path(bundle.model_name, str(bundle.manifest["target"]), bundle.precision)
    if _holds(destination, bundle):
        return destination
    try:
        with staged_bundle(destination, overwrite=True) as staging:
            for name in bundle.manifest["files"]:
                target = staging / PurePosixPath(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(safe_member(source, name), target)  # not copy2: the package's modes may be 0444
            shutil.copyfile(source / MANIFEST, staging / MANIFEST)
            Bundle.load(staging)
    except OSError as exc:
        raise BundleError(f"{destination}: cannot write the cache copy of the default bundle ({exc.strerror}); "
                          "set XDG_CACHE_HOME to a writable directory, or pass --bundle DIR") from None
    return destination


def _holds(copy: Path, source: Bundle) -> bool:
    """Whether ``copy`` is a verified bundle listing every file of ``source`` with the same hash."""
    if not (copy / MANIFEST).is_file():
        return False
    try:
        files = Bundle.load(copy).manifest["files"]
    except BundleError:
        return False
    return all(isinstance(files.get(name), dict) and files[name].get("sha256") == entry["sha256"]
               for name, entry in source.manifest["files"].items())
