"""The multi-worker patch of Keras's TensorFlow trainer is written for one Keras: a Keras upgrade that
changes what it replaces must fail here (and refuse at run time), not train with a wrong trainer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.train import keras_multiworker

ROOT = Path(__file__).resolve().parent.parent


def test_installed_keras_is_the_one_the_patch_was_written_for():
    from engine.tf_runtime import keras

    assert keras().__version__ == keras_multiworker.PINNED_KERAS
    # Fails when a Keras upgrade edits _maybe_symbolic_build, reduce_per_replica or the multi-worker
    # test they rely on: re-read the upstream code, re-check the patch, then update the digests.
    assert keras_multiworker.source_digests() == keras_multiworker.SOURCE_DIGESTS
    keras_multiworker.check_compatible()


def test_pyproject_pins_the_patched_keras():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(rf'"keras=={re.escape(keras_multiworker.PINNED_KERAS)}"', text)


def test_another_keras_or_changed_trainer_code_is_refused(monkeypatch):
    from engine.tf_runtime import keras

    monkeypatch.setattr(keras(), "__version__", "3.99.0")
    with pytest.raises(keras_multiworker.KerasPatchMismatch, match="needs Keras 3.15.1 .installed: 3.99.0"):
        keras_multiworker.check_compatible()
    monkeypatch.undo()
    monkeypatch.setitem(keras_multiworker.SOURCE_DIGESTS, "reduce_per_replica", "0" * 16)
    with pytest.raises(keras_multiworker.KerasPatchMismatch, match=r"differs .*\(reduce_per_replica\)"):
        keras_multiworker.check_compatible()
