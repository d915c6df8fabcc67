"""What the tabs share: the job runner, the settings, the loaded model and app-wide signals.

Tabs take an :class:`AppContext` in ``__init__`` and subscribe to its signals (napari's
"a view takes its model and listens to it"); they never talk to each other directly. A request
for another tab ("explain this image", "open this run") is a signal its answering tab subscribes
to, emitted after ``show_tab`` (which builds that tab if the window has not yet).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal, Slot

from app.jobs import JobHandle, JobRunner

log = logging.getLogger("convscope.app")

MAX_RECENT = 8


class AppSettings:
    """A small typed wrapper over :class:`QSettings` (last folders, geometry, preferences, recents).

    Tests pass their own ``QSettings`` (an ini file in a temporary folder)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings if qsettings is not None else QSettings("ConvScope", "ConvScope")

    def value(self, key: str, default: Any = None, type_: type | None = None) -> Any:
        raw = self.qsettings.value(key, default)
        if raw is None:
            return default
        if type_ is bool:
            if isinstance(raw, str):
                return raw.lower() in ("1", "true", "yes")
            return bool(raw)
        if type_ in (int, float, str):
            try:
                return type_(raw)
            except (TypeError, ValueError):
                return default
        return raw

    def set_value(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, value)

    def recent(self, kind: str) -> list[str]:
        raw = self.qsettings.value(f"recent/{kind}", [])
        if isinstance(raw, str):
            raw = [raw] if raw else []
        return [str(item) for item in (raw or [])]

    def add_recent(self, kind: str, path: str) -> None:
        items = [p for p in self.recent(kind) if p != path]
        items.insert(0, path)
        self.qsettings.setValue(f"recent/{kind}", items[:MAX_RECENT])

    def remove_recent(self, kind: str, path: str) -> None:
        self.qsettings.setValue(f"recent/{kind}", [p for p in self.recent(kind) if p != path])

    def sync(self) -> None:
        self.qsettings.sync()


class AppContext(QObject):
    """Shared state of one window."""

    tf_ready = Signal()
    model_changed = Signal(object)  # engine.models.loading.LoadedModel
    model_failed = Signal(str, str)  # source, one-line reason: the model pickers show it inline
    layer_selected = Signal(str)
    image_chosen = Signal(str)  # the user chose an image on some tab: the image pickers offer it
    explain_image = Signal(str)  # "explain this image with the current model" (the Grad-CAM tab answers)
    open_run = Signal(str)  # "show this run folder's evaluation" (the Evaluation tab answers)
    augmentation_chosen = Signal(str)  # a preset chosen on the Dataset tab's preview (training uses it)
    dataset_changed = Signal(object)  # engine.data.scan.ScanResult
    run_finished = Signal(str)  # run folder
    runs_changed = Signal()  # a run was created, finished or removed
    show_tab = Signal(str)  # ask the main window to show the tab with this title
    export_model = Signal(str)  # "open the Export dialog for this run folder / model file" (the main window answers)

    def __init__(self, settings: AppSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.settings = settings or AppSettings()
        self._tf_ready = False
        self._tf_job: JobHandle | None = None
        self._model = None
        self._model_job: JobHandle | None = None
        self._model_source = ""
        self.dataset = None  # the last ScanResult

    # ---- TensorFlow, loaded in the background
    @property
    def tf_is_ready(self) -> bool:
        return self._tf_ready

    def load_tf(self) -> JobHandle | None:
        """Import TensorFlow/Keras on a worker thread; ``tf_ready`` fires when done."""
        if self._tf_ready or self._tf_job is not None:
            return self._tf_job
        self._tf_job = self.runner.start("Loading TensorFlow", _load_tensorflow, background=True)
        self._tf_job.finished.connect(self._on_tf_loaded)
        return self._tf_job

    @Slot(object)
    def _on_tf_loaded(self, _result: object) -> None:
        from app.gui_gc import freeze_long_lived_objects  # noqa: PLC0415

        freeze_long_lived_objects()  # TensorFlow's objects: out of every later full collection
        self._tf_ready = True
        self.tf_ready.emit()

    # ---- the current model
    @property
    def current_model(self):
        return self._model

    def open_model(self, source: str, trust: bool = False) -> JobHandle:
        """Load a model (a .keras file, a run folder or a base name) in the runner; emits
        ``model_changed`` when loaded, ``model_failed`` (shown inline by every model picker) and the
        runner's error report when not. Loading runs on a thread of this process: a hostile file
        cannot make it run away, because ``load_model`` bounds what it inflates and allocates first
        (engine/models/archive.py, footprint.py)."""

        def job(emit, cancel):
            from engine.events import Status  # noqa: PLC0415
            from engine.models.loading import load_model  # noqa: PLC0415

            emit(Status(f"Loading {source}"))
            return load_model(source, trust=trust)

        self._model_job = self.runner.start("Loading model", job, group="model")
        self._model_job.finished.connect(self._on_model_loaded)
        self._model_job.failed.connect(self._on_model_failed)
        self._model_source = source
        return self._model_job

    @Slot(object)
    def _on_model_failed(self, error: object) -> None:
        if self.sender() is self._model_job:  # a replaced load's failure is not news
            self.model_failed.emit(self._model_source, str(error))

    @Slot(object)
    def _on_model_loaded(self, loaded: object) -> None:
        self.set_model(loaded)

    def set_model(self, loaded) -> None:
        self._model = loaded
        if loaded is not None and getattr(loaded, "kind", "") == "run":
            self.settings.add_recent("runs", str(loaded.source))
        self.model_changed.emit(loaded)


def _load_tensorflow(emit, cancel):
    from engine.events import Status  # noqa: PLC0415
    from engine.tf_runtime import keras, tf  # noqa: PLC0415

    emit(Status("Loading TensorFlow…"))
    k = keras()
    # Warm-up: pay the one-time op/kernel set-up here, not in the user's first job.
    import numpy as np  # noqa: PLC0415

    x = np.zeros((1, 8, 8, 3), np.float32)
    k.ops.flip(x, axis=2)
    k.layers.RandomFlip("horizontal")(x, training=True)
    k.layers.Conv2D(2, 3)(x)
    t = tf()
    with t.GradientTape() as tape:
        v = t.Variable(x)
        y = t.reduce_sum(v * 2.0)
    tape.gradient(y, v)
    return True
