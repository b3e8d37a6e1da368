"""Start a real ``tritonserver`` on a model repository, health-check it, stop it with nothing left.

Which server: a full Triton install (``tritonserver`` on PATH with its backends in
``/opt/tritonserver/backends``: the native onnxruntime, openvino and tensorrt backends too), else
the binary the ``nvidia-pytriton`` wheel carries, whose only backend is ``python``
(:data:`SERVER_SOURCES`, first found wins). The wheel's two traps (issue 17) are handled here:

- its python-backend stub links ``libpython3.X.so`` and would pick the system's build, not the
  running interpreter's (``'_thread.RLock' object has no attribute '_recursion_count'``):
  ``LD_LIBRARY_PATH`` starts with this interpreter's ``LIBDIR``, and ``PATH`` with its ``bin`` (the
  stub finds its packages through the ``python`` on PATH);
- PyTriton's own ``serve()`` orphans ``tritonserver`` on SIGTERM: we do not use it. The server is
  our child in its own process group, dies with us (``PR_SET_PDEATHSIG``), and :meth:`stop`
  terminates the group and waits (SIGKILL after a grace period).

Models load explicitly (``--model-control-mode=explicit``): only those whose backend the server
has and whose files are present (a ``tensorrt_plan`` model waits for its engine on the device).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feredge.errors import FeredgeError
from feredge.serve.repository import CONFIG, REPOSITORY_DIR, model_dirs, parse_config


@dataclass(frozen=True)
class TritonInstall:
    """A ``tritonserver`` binary and the backend directory it loads backends from."""

    binary: Path
    backends: Path
    source: str
    scratch: Path | None = None  # a directory we assembled (the wheel's backend dir); removed on stop

    def has_backend(self, backend: str) -> bool:
        return (self.backends / backend).is_dir()


def _full_triton() -> TritonInstall | None:
    found = shutil.which("tritonserver")
    if not found:
        return None
    binary = Path(found).resolve()
    for backends in (binary.parent.parent / "backends", Path("/opt/tritonserver/backends")):
        if backends.is_dir():
            return TritonInstall(binary, backends, f"tritonserver at {binary}")
    return None


def _pytriton_wheel() -> TritonInstall | None:
    """The nvidia-pytriton wheel's server, found on disk (its Python package is not imported: it pins numpy<2)."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    binary = root / "bin" / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    python = root / "backends" / "python"
    if not (binary.is_file() and stub.is_file() and (python / "libtriton_python.so").is_file()):
        return None
    # the python backend wants libtriton_python.so, its utils and the stub for this Python in one directory
    scratch = Path(tempfile.mkdtemp(prefix="feredge-triton-backends-"))
    (scratch / "python").mkdir()
    for source in (python / "libtriton_python.so", python / "triton_python_backend_utils.py", stub):
        (scratch / "python" / source.name).symlink_to(source)
    return TritonInstall(binary, scratch, f"nvidia-pytriton's tritonserver (python backend, Python {version})",
                         scratch)


#: where a server may come from, in order of preference
SERVER_SOURCES: tuple[tuple[str, Callable[[], TritonInstall | None]], ...] = (
    ("full Triton (tritonserver on PATH)", _full_triton),
    ("nvidia-pytriton wheel", _pytriton_wheel),
)


def find_triton() -> TritonInstall:
    for _name, find in SERVER_SOURCES:
        install = find()
        if install is not None:
            return install
    raise FeredgeError("no tritonserver found: install a full Triton, or pip install --no-deps nvidia-pytriton==0.7.0 "
                       "(its bundled server runs the python-backend models)")


def resolve_repository(path: Path) -> tuple[Path, Path | None]:
    """(repository to serve, scratch directory to remove after) for a repository or a bundle.

    A bundle (``feredge export --target triton``) is served from a copy of ``BUNDLE/triton`` made of
    links to its verified files, with each python model's ``bundle`` parameter made absolute: the
    server and its stubs write next to the models (``__pycache__``) and a bundle refuses unlisted files.
    """
    if not (path / "manifest.json").is_file():
        if not path.is_dir() or not model_dirs(path):
            raise FeredgeError(f"{path}: neither a bundle nor a Triton model repository (no */{CONFIG})")
        return path, None
    from google.protobuf import text_format

    from feredge.bundle import Bundle

    Bundle.load(path)  # served files are verified files
    source = path / REPOSITORY_DIR
    if not source.is_dir():
        raise FeredgeError(f"{path}: bundle has no Triton repository; export it with --target triton")
    scratch = Path(tempfile.mkdtemp(prefix="feredge-triton-repo-"))
    for model_dir in model_dirs(source):
        config = parse_config(model_dir / CONFIG)
        if "bundle" in config.parameters:
            where = Path(config.parameters["bundle"].string_value)
            config.parameters["bundle"].string_value = str(where if where.is_absolute()
                                                           else (model_dir / where).resolve())
        target = scratch / model_dir.name
        target.mkdir()
        (target / CONFIG).write_text(text_format.MessageToString(config), encoding="utf-8")
        for version in (p for p in model_dir.iterdir() if p.is_dir()):
            (target / version.name).mkdir()
            for member in version.iterdir():
                (target / version.name / member.name).symlink_to(member.resolve())
    return scratch, scratch


def loadable_models(repository: Path, install: TritonInstall) -> tuple[list[str], dict[str, str]]:
    """(models to load, model → why not) for this server."""
    load, skipped = [], {}
    for model_dir in model_dirs(repository):
        config = parse_config(model_dir / CONFIG)
        backend = {"tensorrt_plan": "tensorrt", "onnxruntime_onnx": "onnxruntime"}.get(config.platform,
                                                                                       config.backend)
        versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and any(p.iterdir())]
        if not install.has_backend(backend):
            skipped[model_dir.name] = f"this server has no {backend} backend"
        elif not versions:
            skipped[model_dir.name] = "no model file yet (a TensorRT plan is built on the device)"
        else:
            load.append(model_dir.name)
    return load, skipped


def _die_with_parent() -> None:  # runs in the child before exec: SIGKILL it when the parent dies
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgrp()


def server_environment() -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ inside a bundle (it would fail verification)
    import feredge

    env["FEREDGE_SYS_PATH"] = str(Path(feredge.__file__).resolve().parent.parent)
    return env


@dataclass
class TritonServer:
    repository: Path
    http_port: int = 8000
    grpc_port: int = 8001
    install: TritonInstall | None = None
    log_path: Path | None = None
    models: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    scratch: Path | None = None  # a repository copy we made (resolve_repository); removed on stop
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 180.0) -> TritonServer:
        install = self.install or find_triton()
        self.install = install
        self.models, self.skipped = loadable_models(self.repository, install)
        if not self.models:
            raise FeredgeError(f"{self.repository}: no model this server can load ({self.skipped})")
        command = [str(install.binary), f"--model-repository={self.repository.resolve()}",
                   f"--backend-directory={install.backends}", f"--http-port={self.http_port}",
                   f"--grpc-port={self.grpc_port}", "--allow-metrics=false", "--model-control-mode=explicit",
                   "--exit-on-error=true", "--strict-readiness=true",
                   *(f"--load-model={m}" for m in self.models)]
        self.log_path = self.log_path or Path(tempfile.mkstemp(prefix="feredge-triton-", suffix=".log")[1])
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_environment(),
                                            preexec_fn=_die_with_parent)
        self._wait_ready(timeout_s)
        return self

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                raise FeredgeError(f"tritonserver exited with {code} while starting; "
                                   f"its log ends:\n{tail}")
            if self.ready():
                return
            time.sleep(0.25)
        tail = self.log_tail()
        self.stop()
        raise FeredgeError(f"tritonserver was not ready after {timeout_s:.0f} s; its log ends:\n{tail}")

    def stop(self, grace_s: float = 20.0) -> int | None:
        """Terminate the server and its process group (the python-backend stubs), wait; SIGKILL if it hangs."""
        process, self.process = self.process, None
        code = None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # stubs left behind by a crash: never orphans
        for scratch in (self.install.scratch if self.install else None, self.scratch):
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        return code

    @classmethod
    def for_path(cls, path: Path, **options: Any) -> TritonServer:
        """A server for a bundle or a repository (see :func:`resolve_repository`)."""
        repository, scratch = resolve_repository(path)
        return cls(repository, scratch=scratch, **options)

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
