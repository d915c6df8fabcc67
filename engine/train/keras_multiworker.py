"""A narrow, pinned patch of Keras 3.15.1's TensorFlow trainer so ``fit`` runs under MultiWorkerMirroredStrategy.

Stock ``model.fit`` under ``tf.distribute.MultiWorkerMirroredStrategy`` fails on every worker with
``ValueError: Attempt to convert a value (PerReplica:...) to a Tensor`` (keras-team/keras#20585,
open since Keras 3.0). Two places of ``keras.src.backend.tensorflow.trainer`` cause it:

1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first distributed batch by
   ``strategy.reduce("MEAN", batch, axis=None)``; in multi-worker mode that reduce returns the
   per-replica structure unchanged. The patch builds from this worker's first local batch
   (``strategy.experimental_local_results``) — the build only needs shapes and dtypes.
2. ``reduce_per_replica`` reduces scalar metric results with ``strategy.reduce("MEAN", v, axis=0)``;
   a scalar has no axis 0. The patch reduces them with ``axis=None`` (the mean over replicas).

Both replacements behave exactly as the originals unless the strategy is a multi-worker
MultiWorkerMirroredStrategy, and :func:`apply` installs them only when a cluster run starts
(``engine.train.cluster``). Because they replace private Keras code, :func:`apply` first checks
that Keras is the pinned version and that the replaced functions' source is the one this patch
was written for; otherwise it refuses with a :class:`KerasPatchMismatch` (and
``tests/test_keras_multiworker.py`` fails) instead of training with a silently wrong trainer.
"""

from __future__ import annotations

import hashlib
import inspect

from engine.errors import ConvScopeError

PINNED_KERAS = "3.15.1"
# sha256 (first 16 hex digits) of inspect.getsource() of what the patch replaces or relies on.
SOURCE_DIGESTS = {
    "TensorFlowTrainer._maybe_symbolic_build": "92a504f5eba9b29f",
    "reduce_per_replica": "2e7d54b1e6edc29a",
    "_collective_all_reduce_multi_worker": "0302369d850e6694",
}
_applied = False


class KerasPatchMismatch(ConvScopeError):
    """The installed Keras is not the one the multi-worker patch was written for."""


def _trainer_module():
    from keras.src.backend.tensorflow import trainer  # noqa: PLC0415 (pinned, tested workaround)

    return trainer


def _targets(trainer) -> dict:
    return {
        "TensorFlowTrainer._maybe_symbolic_build": trainer.TensorFlowTrainer._maybe_symbolic_build,
        "reduce_per_replica": trainer.reduce_per_replica,
        "_collective_all_reduce_multi_worker": trainer._collective_all_reduce_multi_worker,
    }


def source_digests() -> dict[str, str]:
    """The digests of the installed Keras's functions the patch touches (before it is applied)."""
    trainer = _trainer_module()
    originals = getattr(trainer, "_convscope_originals", None) or _targets(trainer)
    return {name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
            for name, fn in originals.items()}


def check_compatible() -> None:
    """Raise :class:`KerasPatchMismatch` unless Keras is the pinned version with the expected trainer code."""
    from engine.tf_runtime import keras  # noqa: PLC0415

    version = keras().__version__
    if version != PINNED_KERAS:
        raise KerasPatchMismatch(
            f"multi-worker training needs Keras {PINNED_KERAS} (installed: {version})",
            f"install keras=={PINNED_KERAS}, the version whose trainer ConvScope's multi-worker patch was written for")
    changed = sorted(name for name, digest in source_digests().items() if SOURCE_DIGESTS[name] != digest)
    if changed:
        raise KerasPatchMismatch(
            f"Keras {version}'s TensorFlow trainer differs from the code the multi-worker patch replaces "
            f"({', '.join(changed)})",
            f"reinstall keras=={PINNED_KERAS}, or re-check the patch in engine/train/keras_multiworker.py")


def apply() -> None:
    """Install the two replacements (idempotent). Only cluster runs call this."""
    global _applied
    if _applied:
        return
    check_compatible()
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    trainer = _trainer_module()
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica
    multi_worker = trainer._collective_all_reduce_multi_worker

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is None or self._distribute_strategy is None or not multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = t.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and multi_worker(strategy):
            return t.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    trainer._convscope_originals = _targets(trainer)
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _applied = True
