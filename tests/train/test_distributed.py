"""``feredge train --nproc 2``: real torchrun + DDP (gloo on CPU) on the synthetic set.

Four 2-process launches (~10 s each here): a straight 2-epoch run, a 1-epoch run resumed to 2,
and a run whose rank 1 fails. The ranks' final state-dict hashes come from the test-only
``FEREDGE_DIST_DEBUG_DIR``; the trainer itself also all-gathers them and fails on a mismatch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from feredge.checkpoint import load_checkpoint
from feredge.cli import main
from feredge.data.synth import write_folder
from feredge.train.distributed import (
    DEBUG_DIR_ENV,
    DEBUG_FAIL_RANK_ENV,
    DistContext,
    DistributedWeightedSampler,
    _failure_message,
    state_hash,
)
from feredge.train.trainer import TrainConfig

#: a step schedule: its rates do not depend on the total epoch count, so 1 + 1 epochs = 2 epochs
# from random weights with SGD (mini_xception's recipe fine-tunes its shipped 64×64 weights with AdamW)
ARGS = ("--model", "mini_xception", "--init", "scratch", "--optimizer", "sgd", "--input-size", "48",
        "--batch-size", "8", "--lr", "0.01",
        "--schedule", "step", "--step-size", "2", "--gamma", "0.5", "--nproc", "2", "--threads", "1")
RUN_FILES = ["best.json", "best.safetensors", "history.json", "last.json", "last.safetensors", "trainer_state.json",
             "trainer_state.safetensors"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_folder(root, n_per_class=10, size=48, seed=3, splits={"train": 6, "val": 2, "test": 2})
    return root


def _train(synth: Path, out: Path, epochs: int, *extra: str, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feredge", "train", "--data", str(synth), "--out", str(out),
                           "--epochs", str(epochs), *ARGS, *extra],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def _rank_hashes(folder: Path) -> list[str]:
    return [(folder / f"rank{r}.sha256").read_text().strip() for r in range(2)]


@pytest.fixture(scope="module")
def straight(synth, tmp_path_factory) -> tuple[Path, list[str], subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("straight")
    done = _train(synth, root / "run", 2, env={DEBUG_DIR_ENV: str(root / "debug")})
    assert done.returncode == 0, done.stderr
    return root / "run", _rank_hashes(root / "debug"), done


def test_two_ranks_end_with_equal_weights_in_one_checkpoint(straight):
    run, hashes, done = straight
    assert hashes[0] == hashes[1]
    # one run directory written once, by rank 0: no per-rank files, one last + best pair
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    model, meta = load_checkpoint(run / "last.safetensors")
    assert state_hash(model) == hashes[0]
    assert meta.metrics["epoch"] == 2 and meta.extra["train_config"]["epochs"] == 2
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    # rank 0 alone logs: one line per epoch, not two
    assert sum(line.startswith("epoch ") for line in done.stdout.splitlines()) == 2, done.stdout
    assert done.stderr.count("Traceback") == 0


def test_the_checkpoint_evaluates(straight, synth, capsys):
    run, _, _ = straight
    assert main(["eval", str(run / "last.safetensors"), "--data", str(synth), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runtime"] == "torch" and report["samples"] == 14 and report["skipped"] == 0  # 2 × 7 classes
    confusion = report["confusion"]
    assert sum(map(sum, confusion)) == 14
    assert report["accuracy"] == pytest.approx(sum(confusion[i][i] for i in range(7)) / 14)


def test_resume_from_epoch_one_reaches_the_straight_runs_weights(straight, synth, tmp_path):
    _, hashes, _ = straight
    first = _train(synth, tmp_path / "run", 1)
    assert first.returncode == 0, first.stderr
    resumed = _train(synth, tmp_path / "run", 2, "--resume", env={DEBUG_DIR_ENV: str(tmp_path / "debug")})
    assert resumed.returncode == 0, resumed.stderr
    epochs = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert "resuming" in resumed.stdout and epochs == ["2/2"], resumed.stdout
    # the sampler's order is a function of (seed, epoch): 1 + 1 epochs are exactly the 2-epoch run
    assert _rank_hashes(tmp_path / "debug") == hashes
    history = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]


def test_a_failing_rank_is_one_line_and_a_non_zero_exit(synth, tmp_path):
    # --quiet reaches the ranks (no notes: the recipe, loading), so stderr is the failure alone
    done = _train(synth, tmp_path / "run", 2, "--quiet", env={DEBUG_FAIL_RANK_ENV: "1"})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["feredge: error: rank 1 of 2: injected failure on rank 1 (FEREDGE_DIST_DEBUG_FAIL_RANK)"], \
        done.stderr
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_failure_message_names_the_first_rank_or_none_when_all_agree(tmp_path):
    def record(rank: int, t: float, message: str, bug: bool = False) -> None:
        (tmp_path / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "time": t, "message": message,
                                                               "bug": bug}))

    record(0, 2.0, "folder dataset not found: x")
    record(1, 1.0, "folder dataset not found: x")
    assert _failure_message(tmp_path, 2, {}) == "folder dataset not found: x"
    record(0, 0.5, "RuntimeError: boom", bug=True)
    assert _failure_message(tmp_path, 2, {}) == (f"rank 0 of 2: RuntimeError: boom (traceback: "
                                                 f"{tmp_path / 'rank0.traceback'})")
    for path in tmp_path.glob("rank*.json"):
        path.unlink()
    assert _failure_message(tmp_path, 2, {1: -9}) == ("training worker rank 1 was killed by signal 9 without a "
                                                      "reason (out of memory?)")


def test_balanced_sampler_deals_one_draw_out_to_the_ranks():
    weights = [1.0, 1.0, 4.0, 0.5, 2.0, 1.0, 3.0]
    samplers = [DistributedWeightedSampler(weights, 7, DistContext(r, 2, r, "gloo", torch.device("cpu")), seed=5)
                for r in range(2)]
    for epoch in (0, 1):
        for s in samplers:
            s.set_epoch(epoch)
        parts = [list(s) for s in samplers]
        assert [len(p) for p in parts] == [4, 4] == [len(s) for s in samplers]
        drawn = torch.multinomial(torch.tensor(weights, dtype=torch.double), 8, replacement=True,
                                  generator=torch.Generator().manual_seed(5 * 100_003 + epoch)).tolist()
        assert parts[0] == drawn[0::2] and parts[1] == drawn[1::2]


def test_config_round_trips_through_json(synth, tmp_path):
    config = TrainConfig(model="csam_net", data=synth, out=tmp_path / "o", teacher=tmp_path / "t.safetensors",
                         model_kwargs={"input_size": [48, 48]}, epochs=3, resume=True)
    config.params.center_weight = 0.5
    back = TrainConfig.from_json(config.to_json())
    assert back == config
