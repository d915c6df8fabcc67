"""The Keras callback through which every training run reports, checkpoints and obeys cancel.

One :class:`EngineCallback` per ``fit`` call:

- ``on_train_batch_end``: throttled :class:`BatchProgress` (≤ ``max_rate`` per second) and the
  cancel check — a set token stops training after the current batch (``model.stop_training``),
  and validation after the current batch (``model.stop_evaluating``).
- ``on_epoch_end`` of a finished epoch: checkpoints (``last``, and ``best`` when validation loss
  improved) through a ``save(kind, epoch)`` function that writes atomically, then history.csv and
  state.json, then :class:`EpochEnded` and :class:`CheckpointSaved`. A cancelled (partial) epoch is
  not recorded: history stays complete up to the last finished epoch and matches ``last.keras``.

The class is created lazily (:func:`make_engine_callback`) so importing this module loads no TF.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from engine.events import BatchProgress, CancelToken, CheckpointSaved, EpochEnded, Sink
from engine.tf_runtime import keras
from engine.train.rundir import RunState


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def make_engine_callback(
    *,
    run: RunState,
    emit: Sink,
    cancel: CancelToken | None,
    save: Callable[[str, int], str],
    total_epochs: int,
    phase: str = "train",
    monitor: str = "val_loss",
    max_rate: float = 20.0,
):
    """Build the callback (see the module docstring). ``save(kind, epoch)`` with kind "last" or
    "best" writes a checkpoint and returns its path."""
    k = keras()

    class EngineCallback(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.cancelled = False
            self.batches_run = 0
            self._last_emit = 0.0
            self._epoch_start = time.perf_counter()
            self._batches = 0

        def on_train_begin(self, logs=None):
            params = getattr(self, "params", None) or {}
            self._batches = int(params.get("steps") or 0)

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.batches_run += 1
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True
                return
            now = time.perf_counter()
            last = self._batches and batch + 1 >= self._batches
            if last or now - self._last_emit >= 1.0 / max_rate:
                self._last_emit = now
                emit(BatchProgress(epoch=run.epochs_done + 1, batch=batch + 1, batches=self._batches,
                                   metrics=_floats(logs), phase=phase))

        def on_test_batch_end(self, batch, logs=None):
            if cancel is not None and cancel.cancelled:
                self.cancelled = True
                self.model.stop_evaluating = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled or (cancel is not None and cancel.cancelled):
                self.cancelled = True
                self.model.stop_training = True
                return  # a partial epoch: not recorded
            seconds = time.perf_counter() - self._epoch_start
            metrics = _floats(logs)
            number = run.epochs_done + 1
            last = save("last", number)
            saved = [(last, False)]
            value = metrics.get(monitor, metrics.get("loss", math.inf))
            if value == value and value < run.best:  # best = this epoch's weights: last's bytes
                saved.append((save("best", number, same_as=last), True))  # named in state once on disk
                run.state["best_value"] = value
                run.state["best_epoch"] = number
                run.state["best_metrics"] = metrics
            row = {"epoch": number, "phase": phase, "seconds": round(seconds, 4)}
            row.update(metrics)
            run.rows.append(row)
            run.state["phase"] = phase
            run.save()
            emit(EpochEnded(epoch=number, epochs=total_epochs, metrics=metrics, seconds=seconds, phase=phase))
            for path, best in saved:
                if path:
                    emit(CheckpointSaved(path=str(path), epoch=number, best=best))

    return EngineCallback()
