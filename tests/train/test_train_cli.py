"""feredge train from the command line: per-model recipes as defaults, run folders, the chance warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from feredge.cli import build_parser, main
from feredge.cli.train_cmd import _config
from feredge.data.synth import write_folder
from feredge.errors import FeredgeError
from feredge.models import get_entry, list_models
from feredge.train.trainer import CHANCE_MARGIN, TrainConfig, Trainer, at_chance


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_folder(root, n_per_class=10, size=48, seed=3, splits={"train": 6, "val": 2, "test": 2})
    return root


def _parsed(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_help_shows_every_models_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "per-model defaults" in out and "default: the model's, see below" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] and
            line.split()[0] in list_models()}
    assert set(rows) == set(list_models())
    for name, row in rows.items():
        d = get_entry(name).train_defaults
        assert row[1:5] == [str(d.epochs), str(d.batch_size), d.optimizer, f"{d.lr:g}"], name


def test_recipe_fills_the_flags_not_given_and_flags_override(capsys: pytest.CaptureFixture[str]) -> None:
    csam = _config(_parsed("--model", "csam_net", "--data", "d"))
    assert (csam.epochs, csam.optimizer, csam.lr, csam.input_size, csam.dropout, csam.warmup_epochs) == (
        16, "adamw", 1e-3, 32, 0.0, 1)  # benchmarks/training.md's csam_net run
    assert "csam_net's recipe: --epochs 16" in capsys.readouterr().err
    given = _config(_parsed("--model", "csam_net", "--data", "d", "--epochs", "2", "--lr", "0.05", "--dropout", "0.2"))
    assert (given.epochs, given.lr, given.dropout, given.input_size) == (2, 0.05, 0.2, 32)
    mini = _config(_parsed("--model", "mini_xception", "--data", "d"))
    assert mini.init == "pretrained" and mini.input_size is None
    scratch = _config(_parsed("--model", "mini_xception", "--data", "d", "--init", "scratch", "--input-size", "48"))
    assert scratch.init is None and scratch.input_size == 48
    with pytest.raises(FeredgeError, match=r"fine-tunes its shipped weights by default.*--init scratch"):
        _config(_parsed("--model", "mini_xception", "--data", "d", "--input-size", "48"))


def test_an_existing_run_folder_needs_resume_or_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.json").write_text("{}")
    for extra in ([], ["--resume", "--force"]):
        assert main(["train", "--model", "mini_xception", "--data", str(tmp_path / "no-data"), "--out", str(run),
                     *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("feredge: error:"), err  # before any work: not even a note
    assert main(["train", "--model", "mini_xception", "--data", str(tmp_path / "no-data"), "--out", str(run)]) == 2
    assert "pass --resume to continue it, --force to start it again" in capsys.readouterr().err


def test_force_starts_the_run_again_and_quiet_keeps_only_warnings(synth: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.json").write_text("stale")
    (run / "notes.md").write_text("mine")
    assert main(["train", "--model", "mini_xception", "--data", str(synth), "--out", str(run), "--epochs", "1",
                 "--batch-size", "16", "--threads", "2", "--force", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("done in ") and len(out.splitlines()) == 1  # no epoch lines under --quiet
    assert all(line.startswith("feredge: warning:") for line in err.splitlines()), err  # no notes, no bars
    assert json.loads((run / "best.json").read_text())["model"] == "mini_xception"  # the new run's
    assert (run / "notes.md").read_text() == "mine"  # what is not the run's is left alone
    assert json.loads((run / "history.json").read_text())["history"][0]["epoch"] == 1


class _Constant(nn.Module):
    """Equal logits for every face (zero weights, learning rate 0): it picks class 0, i.e. guesses."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(48 * 48, 7)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


def test_chance_accuracy_is_warned_once_after_the_first_epochs(synth: Path, tmp_path: Path) -> None:
    warnings: list[str] = []
    config = TrainConfig(model="mini_xception", data=synth, out=tmp_path / "run", epochs=3, batch_size=16, lr=0.0,
                         weight_decay=0.0, input_size=48, threads=2, chance_epochs=2)
    result = Trainer(config, progress=False, log=lambda _: None, model=_Constant(), warn=warnings.append).run()
    assert [h.val["accuracy"] for h in result.history] == [pytest.approx(1 / 7)] * 3  # balanced val, one class
    assert len(warnings) == 1  # at epoch 2, not again
    assert "at chance after 2 epoch(s)" in warnings[0] and "14.3%" in warnings[0]


def test_at_chance_threshold() -> None:
    assert at_chance([0.10, 1 / 7], 7) and at_chance([1 / 7 + CHANCE_MARGIN], 7)
    assert not at_chance([0.12, 0.25], 7)  # one epoch above chance is learning
    assert not at_chance([], 7) and at_chance([0.54], 2) and not at_chance([0.6], 2)
