"""Quick training runs the tests share: the settings of a small reproducible run, and a trained one."""

from __future__ import annotations

from pathlib import Path

from imagegen import make_shapes_dataset


def quick_config(data, out, **overrides):
    """A ``TrainConfig`` for a quick run of ``data`` into ``out``: 48 px, batches of 8, 3 epochs, no
    early stopping, seed 1, learning rate 1e-3, no TensorBoard; ``overrides`` win."""
    from engine.train.config import TrainConfig

    settings = dict(data=str(data), image_size=48, batch_size=8, epochs=3, patience=0, seed=1, out=str(out),
                    tensorboard=False, learning_rate=1e-3)
    settings.update(overrides)
    return TrainConfig(**settings)


def trained_three_shapes(root: Path) -> tuple[Path, Path]:
    """A run trained (seed 0, 3 epochs) on circles, squares and triangles (20 each, 48 px) under
    ``root``: (its run folder, the data folder)."""
    from engine.train.strategies import train

    data = make_shapes_dataset(root / "shapes", per_class=20, size=48, classes=("circle", "square", "triangle"))
    return Path(train(quick_config(data, root / "run", seed=0)).run_dir), data
