"""The optimizer choice: "adam-cosine" follows its schedule over the run's epochs, is recorded in the
run, and a cancelled fine-tune resumes where its schedule stopped (not from a new warm-up)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import InvalidSetting
from engine.events import CancelToken, EpochEnded
from engine.train import rundir
from engine.train.config import TrainConfig
from engine.train.strategies import resume, train


def _rate_at(optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_adam_cosine_warms_up_for_one_epoch_then_decays_over_the_runs_epochs():
    from engine.models.presets import make_optimizer

    optimizer = make_optimizer("adam-cosine", 1e-3, steps_per_epoch=10, epochs=3)
    assert type(optimizer).__name__ == "Adam"
    assert _rate_at(optimizer, 0) == pytest.approx(0.0)
    assert _rate_at(optimizer, 5) == pytest.approx(0.5e-3)  # linear warm-up over the first epoch
    assert _rate_at(optimizer, 10) == pytest.approx(1e-3)
    decay = [_rate_at(optimizer, step) for step in range(10, 41, 5)]
    assert all(later < earlier for earlier, later in zip(decay, decay[1:]))
    assert _rate_at(optimizer, 25) == pytest.approx(0.5e-3)  # half way through a 30-step cosine
    assert _rate_at(optimizer, 40) == pytest.approx(0.0, abs=1e-12)
    rmsprop = make_optimizer("rmsprop", 1e-3, steps_per_epoch=10, epochs=3)
    assert type(rmsprop).__name__ == "RMSprop" and _rate_at(rmsprop, 25) == pytest.approx(1e-3)


def test_an_unknown_optimizer_is_refused_with_the_choices(tmp_path):
    with pytest.raises(InvalidSetting, match="unknown optimizer 'sgd'") as error:
        TrainConfig(data=str(tmp_path), optimizer="sgd").validate()
    assert "choose one of: rmsprop, adam-cosine" in str(error.value)
    from engine.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tmp_path), "--optimizer", "sgd"])
    assert stop.value.code == 2


def test_the_command_line_passes_the_optimizer_to_the_run(tmp_path):
    from engine.cli import build_parser

    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--optimizer", "adam-cosine"])
    assert args.optimizer == "adam-cosine"


@pytest.mark.slow
def test_a_cancelled_adam_cosine_finetune_resumes_on_its_schedule(tmp_path, tiny_base):
    """Phase 1 (the head) keeps RMSprop; phase 2 is Adam on the schedule; after a cancel in phase 2
    the resumed run continues the optimizer's step count, so the rate goes on decaying."""
    from engine.models.loading import load_keras_file

    data = make_shapes_dataset(tmp_path / "shapes", per_class=12, size=40)
    cancel = CancelToken()

    def stop_in_the_fine_tuning(event):
        if isinstance(event, EpochEnded) and event.epoch == 2:  # epoch 1: head, epoch 2: first fine-tuning epoch
            cancel.cancel()

    config = TrainConfig(data=str(data), strategy="finetune", base=tiny_base, augment=False, image_size=48,
                         batch_size=8, head_epochs=1, epochs=3, patience=0, optimizer="adam-cosine",
                         learning_rate=1e-3, out=str(tmp_path / "run"), tensorboard=False)
    first = train(config, stop_in_the_fine_tuning, cancel)
    assert first.status == "cancelled" and first.epochs_done == 2
    run = Path(first.run_dir)
    assert json.loads((run / "config.json").read_text())["optimizer"] == "adam-cosine"
    train_images = len((run / "split" / "train.txt").read_text().splitlines())
    steps = -(-train_images // 8)
    optimizer = load_keras_file(run / "last.keras", compile=True).optimizer
    assert type(optimizer).__name__ == "Adam" and int(optimizer.iterations) == steps

    second = resume(str(run))
    assert second.status == "finished"
    assert [r["phase"] for r in rundir.read_history_rows(run)] == ["head", "finetune", "finetune", "finetune"]
    optimizer = load_keras_file(run / "last.keras", compile=True).optimizer
    assert int(optimizer.iterations) == 3 * steps  # continued, not a fresh optimizer after the resume
    # after the warm-up epoch, 2 of the cosine's 3 epochs: 1e-3 * (1 + cos(2π/3)) / 2
    assert float(optimizer.learning_rate) == pytest.approx(0.25e-3, rel=1e-4)


def test_fine_tuning_with_adam_cosine_and_no_rate_given_uses_the_measured_peak(tmp_path):
    """An empty learning-rate box (GUI) or no --learning-rate (CLI): RMSprop keeps the book's 1e-5,
    adam-cosine gets the 3e-4 peak the study measured (docs/study.md), the head phase RMSprop's 1e-3."""
    adam = TrainConfig(data=str(tmp_path), strategy="finetune", optimizer="adam-cosine").resolved()
    rmsprop = TrainConfig(data=str(tmp_path), strategy="finetune").resolved()
    assert (adam.learning_rate, adam.head_learning_rate) == (3e-4, 1e-3)
    assert (rmsprop.learning_rate, rmsprop.head_learning_rate) == (1e-5, 1e-3)
    given = TrainConfig(data=str(tmp_path), strategy="finetune", optimizer="adam-cosine", learning_rate=3e-5)
    assert given.resolved().learning_rate == 3e-5
