"""A tiny study for GUI tests, run in the job runner's child process: the tiny base registered there,
one epoch per rung at 48 px (the Study tab's ``job_target`` points here)."""

from __future__ import annotations

import dataclasses


def run_tiny(config, emit, cancel):
    import test_train_tinybase

    from engine.study.job import run

    test_train_tinybase.register()
    tiny = dataclasses.replace(config, base=test_train_tinybase.NAME, max_epochs=1, image_size=48, batch_size=8)
    return run(tiny, emit, cancel)
