"""Python's cyclic garbage collection, run only on the GUI thread (calibre's GarbageCollector).

Automatic collection runs in whichever thread happens to allocate; when that is a job thread
(a dataset scan's thread pool, TensorFlow's loader) and the cycle holds Qt objects, Qt destroys
them off the GUI thread and the process crashes. So automatic collection is switched off and a
timer on the GUI thread collects whenever the allocation counters pass the thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot


class GuiGarbageCollector(QObject):
    """Collects on a GUI-thread timer: a counter check every ``INTERVAL_MS``, a collection only
    when the allocation counters pass Python's thresholds."""

    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(self.INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    @Slot()
    def check(self) -> None:
        counts = gc.get_count()
        if counts[0] <= self.threshold[0]:
            return
        generation = 0
        if counts[1] > self.threshold[1]:
            generation = 1
            if counts[2] > self.threshold[2]:
                generation = 2
        gc.collect(generation)
        self.collections += 1

    def stop(self) -> None:
        """Back to Python's automatic collection (tests, shutdown)."""
        self.timer.stop()
        gc.unfreeze()
        gc.enable()


def freeze_long_lived_objects() -> None:
    """Move the objects alive now — after start-up and the TensorFlow import, hundreds of thousands
    of modules, classes and functions that live as long as the process — into the permanent
    generation (``gc.freeze``), so the collector's full collections no longer walk them: with
    TensorFlow imported, one generation-1 collection on the GUI thread took 178 ms during training.
    A young collection first, so that fresh garbage is not frozen with them. Call on the GUI thread."""
    gc.collect(1)
    gc.freeze()


_collector: GuiGarbageCollector | None = None


def install_gui_garbage_collector(app: QObject) -> GuiGarbageCollector:
    """Install the GUI-thread collector once per QApplication (call on the GUI thread)."""
    global _collector  # noqa: PLW0603
    try:
        current = _collector is not None and _collector.parent() is app
    except RuntimeError:  # its QApplication was deleted
        current = False
    if not current:
        _collector = GuiGarbageCollector(app)
    return _collector
