"""Data-parallel training: ``feredge train --nproc N`` runs N copies of the trainer under torchrun.

Launch. :func:`launch` is the parent: it runs torchrun's own agent in-process
(``torch.distributed.launcher.elastic_launch``, the Python entry of ``torch.distributed.run``)
with a c10d rendezvous on ``127.0.0.1:0`` — the agent binds port 0, so the OS picks a free port and
parallel runs never collide — and N worker processes ``python -m feredge.cli.train_worker CONFIG``,
each reading the same :class:`~feredge.train.trainer.TrainConfig` from JSON. Back end: NCCL with
one GPU per local rank when CUDA is available, else gloo on CPU (over loopback,
``GLOO_SOCKET_IFNAME=lo`` unless the caller set it; CPU threads split between the ranks unless
``OMP_NUM_THREADS`` or ``--threads`` says otherwise). ``torchrun -m feredge train ...`` by hand
works too: the command sees torchrun's ``WORLD_SIZE`` and runs as a worker.

Semantics (what :class:`~feredge.train.trainer.Trainer` does with a :class:`DistContext`):

- Same model on every rank: every rank seeds torch with ``--seed`` before building it, and DDP
  broadcasts rank 0's parameters and buffers when it wraps the model (after ``--resume`` has
  loaded the last checkpoint on every rank from the shared run directory).
- Different data on every rank: a :class:`~torch.utils.data.DistributedSampler` (seeded with
  ``--seed``, ``set_epoch`` each epoch, so the order is a function of (seed, epoch) and resume is
  exact) gives each rank a disjoint 1/N of the shuffled train set; ``--balanced`` draws one
  weighted sample per epoch, identical on all ranks, and deals it out (:class:`DistributedWeightedSampler`).
  ``--batch-size`` is per process: one step sees N × batch images.
- DDP wraps a small module whose forward is the whole objective (:class:`ObjectiveStep`), so
  objectives that call a model's own methods (center, EAC, SPD) still do one DDP forward per
  backward. State an objective updates outside the optimiser (the center loss's centres) is
  averaged over the ranks after each step, keeping the ranks equal.
- Validation runs on rank 0 alone, on the whole val set with the unwrapped model, exactly as a
  single process does; the epoch's record (val report, train loss = per-step loss averaged over
  the ranks) is broadcast so every rank holds the same history and best score. Rank 0 alone
  writes checkpoints, trainer state, ``history.json`` and logs; the other ranks print nothing.
- At the end the ranks compare a hash of their state dicts (all-gather) and fail if they differ.

Failures: a worker that raises writes one line (``FeredgeError`` message, or ``Type: message``
for a bug, whose traceback goes to a file beside it) to the launcher's error directory and exits
non-zero; torchrun stops the others; :func:`launch` raises one :class:`FeredgeError` naming the
rank that failed first (or none, when every rank failed the same way, e.g. a bad ``--data``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from feredge.errors import FeredgeError

#: set by the launcher for its workers: where each rank writes its one-line failure
ERRORS_ENV = "FEREDGE_DIST_ERRORS"
#: test-only: each rank writes the sha256 of its final state dict to ``rank{R}.sha256`` here
DEBUG_DIR_ENV = "FEREDGE_DIST_DEBUG_DIR"
#: test-only: this rank raises a FeredgeError at its first training step
DEBUG_FAIL_RANK_ENV = "FEREDGE_DIST_DEBUG_FAIL_RANK"


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext | None:
        """The context torchrun's environment describes, or None outside a multi-process run."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            if local_rank >= torch.cuda.device_count():
                raise FeredgeError(f"rank {rank} needs GPU {local_rank} but this machine has "
                                   f"{torch.cuda.device_count()}; use --nproc {torch.cuda.device_count()}")
            return cls(rank, world, local_rank, "nccl", torch.device("cuda", local_rank))
        return cls(rank, world, local_rank, "gloo", torch.device("cpu"))

    def init(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            dist.init_process_group(self.backend, rank=self.rank, world_size=self.world_size)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class ObjectiveStep(nn.Module):
    """The model plus its objective as one module, so DDP sees one forward per backward.

    Why: DDP syncs gradients for what its wrapped module's forward computed; the center, EAC and
    SPD objectives call ``features``/``forward_with_cam``/``forward_with_regularizer``, methods a
    DDP wrapper does not have, and EAC runs the network twice per step.
    """

    def __init__(self, model: nn.Module, objective: Callable[[Any], tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        self.model = model
        self._objective = objective

    def forward(self, x: torch.Tensor, y: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from feredge.train.objectives import Batch

        return self._objective(Batch(x, y, soft))


class DistributedWeightedSampler(Sampler[int]):
    """``--balanced`` across ranks: one weighted draw per epoch, the same on every rank, dealt out.

    The draw uses a generator seeded with (seed, epoch), so every rank computes the same list
    and takes every N-th index from its rank on; all ranks get the same count.
    """

    def __init__(self, weights: list[float], num_samples: int, ctx: DistContext, seed: int) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.per_rank = -(-num_samples // ctx.world_size)
        self.total = self.per_rank * ctx.world_size
        self.rank, self.world, self.seed, self.epoch = ctx.rank, ctx.world_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        drawn = torch.multinomial(self.weights, self.total, replacement=True, generator=generator)
        return iter(drawn[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


def mean_over_ranks(values: list[float], ctx: DistContext) -> list[float]:
    """Element-wise mean of equal-length lists over the ranks (the step losses of one epoch)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return (tensor / ctx.world_size).tolist()


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when any rank says so (``--max-minutes``: all ranks stop at the same step)."""
    tensor = torch.tensor([int(flag)], device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def average_tensors(tensors: list[torch.Tensor], ctx: DistContext) -> None:
    """Replace each tensor in place by its mean over the ranks."""
    for tensor in tensors:
        if tensor.is_floating_point():
            dist.all_reduce(tensor)
            tensor /= ctx.world_size


def from_main(value: Any, ctx: DistContext) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object sent over the process group, never a file)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP broadcasts them at the start of each forward, so after an epoch's last step every rank
    holds the statistics of its own last batch; rank 0's are the ones its checkpoint keeps.
    """
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def state_hash(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_ranks_agree(model: nn.Module, ctx: DistContext) -> str:
    """All-gather each rank's state-dict hash; a FeredgeError when any differs (the ranks diverged)."""
    mine = state_hash(model)
    debug = os.environ.get(DEBUG_DIR_ENV)
    if debug:
        Path(debug).mkdir(parents=True, exist_ok=True)
        (Path(debug) / f"rank{ctx.rank}.sha256").write_text(mine + "\n", encoding="utf-8")
    hashes: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(hashes, mine)
    if len(set(hashes)) != 1:
        short = ", ".join(h[:8] for h in hashes)
        raise FeredgeError(f"the {ctx.world_size} ranks ended with different weights ({short})")
    return mine


def maybe_fail_for_test(ctx: DistContext) -> None:
    if os.environ.get(DEBUG_FAIL_RANK_ENV) == str(ctx.rank):
        raise FeredgeError(f"injected failure on rank {ctx.rank} ({DEBUG_FAIL_RANK_ENV})")


# --- the worker side -----------------------------------------------------------------------------------------------


def silence_other_ranks(ctx: DistContext) -> None:
    """Ranks other than 0 print nothing: their stdout (and, under the launcher, stderr) go to /dev/null.

    Under :func:`launch` a failing rank still reports through its error file; a hand-run
    ``torchrun`` keeps their stderr so failures stay visible.
    """
    if ctx.is_main:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    streams = (sys.stdout, sys.stderr) if os.environ.get(ERRORS_ENV) else (sys.stdout,)
    for stream in streams:
        stream.flush()
        os.dup2(devnull, stream.fileno())
    os.close(devnull)


def report_failure(ctx: DistContext, exc: BaseException) -> int:
    """Record this rank's failure in one line (and a bug's traceback beside it); the exit status."""
    line = str(exc) if isinstance(exc, FeredgeError) else f"{type(exc).__name__}: {exc}"
    line = " ".join(line.split()) or type(exc).__name__
    errors = os.environ.get(ERRORS_ENV)
    if errors:
        folder = Path(errors)
        if not isinstance(exc, FeredgeError):
            (folder / f"rank{ctx.rank}.traceback").write_text(traceback.format_exc(), encoding="utf-8")
        record = {"rank": ctx.rank, "time": time.time(), "message": line, "bug": not isinstance(exc, FeredgeError)}
        tmp = folder / f".rank{ctx.rank}.json"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, folder / f"rank{ctx.rank}.json")
    else:
        print(f"feredge: error: rank {ctx.rank}: {line}", file=sys.stderr)
    return 2 if isinstance(exc, FeredgeError) else 1


# --- the launcher side ---------------------------------------------------------------------------------------------


def _worker_env(nproc: int, threads: int | None) -> dict[str, str]:
    env = {"GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads or max(1, (os.cpu_count() or 1) // nproc))
    return env


def _failure_message(errors: Path, nproc: int, exitcodes: dict[int, int]) -> str:
    records = []
    for path in errors.glob("rank*.json"):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    if not records:
        rank, code = min(exitcodes.items()) if exitcodes else (0, -1)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"training worker rank {rank} {how} without a reason (out of memory?)"
    records.sort(key=lambda r: r["time"])
    first = records[0]
    where = ""
    if first.get("bug"):
        rank = first["rank"]
        where = f" (traceback: {errors / f'rank{rank}.traceback'})"
    if len(records) == nproc and len({r["message"] for r in records}) == 1:
        return first["message"] + where
    return f"rank {first['rank']} of {nproc}: {first['message']}{where}"


def launch(config_json: dict[str, Any], nproc: int, *, as_json: bool = False, threads: int | None = None,
           quiet: bool = False) -> None:
    """Run ``nproc`` training workers on this machine and wait; a FeredgeError when any fails."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise FeredgeError(f"--nproc {nproc} needs one GPU per process (NCCL); this machine has "
                           f"{torch.cuda.device_count()}")
    folder = Path(tempfile.mkdtemp(prefix="feredge-dist-"))
    keep = False
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config_json), encoding="utf-8")
    errors = folder / "errors"
    errors.mkdir()
    launch_config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"feredge-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1", max_restarts=0,
        monitor_interval=0.1,
    )
    args = (["-m", "feredge.cli.train_worker", str(config_path)] + (["--json"] if as_json else [])
            + (["--quiet"] if quiet else []))
    saved = dict(os.environ)
    os.environ.update(_worker_env(nproc, threads))
    os.environ[ERRORS_ENV] = str(errors)
    # torchrun's agent logs every start, stop and failure with its own tables; the workers report instead
    agent_logs = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
                  if name.startswith("torch.distributed")]
    levels = [log.level for log in agent_logs]
    for log in agent_logs:
        log.setLevel(logging.CRITICAL)
    try:
        elastic_launch(launch_config, sys.executable)(*args)
    except ChildFailedError as exc:
        codes = {f.local_rank: f.exitcode for f in exc.failures.values()}
        message = _failure_message(errors, nproc, codes)
        keep = any(errors.glob("*.traceback"))
        raise FeredgeError(message) from None
    except SignalException as exc:  # the agent has stopped the workers; no orphan is left
        if exc.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise FeredgeError(f"stopped by {signal.Signals(exc.sigval).name}; the run directory keeps the last "
                           "finished epoch (--resume continues it)") from None
    finally:
        for log, level in zip(agent_logs, levels, strict=True):
            log.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
