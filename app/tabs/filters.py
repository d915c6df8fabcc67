"""Filters tab: what each filter of a conv layer responds to (Chollet 5.4.2).

Pick a layer and a range of filters, Generate: ``engine.inspect.filters.generate_patterns`` runs
gradient ascent in the job runner, reporting a Progress event per step and a PartialResult per
finished pattern, so the gallery grows while it works. Cancel keeps what is finished. Click a
pattern to enlarge it; save the gallery as a PNG.

The gallery is laid out for the view (as many patterns per row as make them largest, re-laid out
when the view is resized until the user zooms or pans) and every pattern carries its filter index.
"""

from __future__ import annotations


import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.tabs.inspection import InspectionTab
from app.widgets.controls import control_row
from app.widgets.image_view import ImageView, best_columns

PER_ROW = 8  # patterns per row of the engine's gallery; the tab lays them out for its view
MARGIN = 5


class FiltersTab(InspectionTab):
    title = "Filters"
    uses_image = False

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._patterns: dict[int, np.ndarray] = {}  # filter index → uint8 pattern, as they arrive
        self._indices: list[int] = []  # the filters shown, gallery order
        self._columns = PER_ROW  # patterns per row as shown
        self.result = None  # the last engine FilterResult
        self.current_filter: int | None = None

        self.layer_combo = QComboBox(self)
        self.layer_combo.setMinimumContentsLength(30)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setToolTip("The convolution layer whose filters to visualise")
        self.first_spin = QSpinBox(self)
        self.first_spin.setRange(0, 4095)
        self.first_spin.setToolTip("First filter index")
        self.count_spin = QSpinBox(self)
        self.count_spin.setRange(1, 512)
        self.count_spin.setValue(16)
        self.count_spin.setToolTip("How many filters, from the first one")
        self.steps_spin = QSpinBox(self)
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setValue(40)
        self.steps_spin.setToolTip("Gradient-ascent steps per filter (the book uses 40)")
        from engine.inspect.filters import auto_precision  # noqa: PLC0415
        from engine.precision import gpu_compute_capability  # noqa: PLC0415

        # the label asks TensorFlow about a GPU only if it is loaded already; the run itself always asks
        auto, auto_reason = auto_precision(gpu=gpu_compute_capability(load_tensorflow=False))

        self.precision_combo = QComboBox(self)
        self.precision_combo.addItem(f"Auto ({auto} here)", "auto")
        self.precision_combo.setItemData(0, auto_reason, Qt.ItemDataRole.ToolTipRole)
        self.precision_combo.addItem("float32", "float32")
        self.precision_combo.addItem("bfloat16", "bfloat16")
        self.precision_combo.setToolTip("bfloat16 is several times faster on CPUs with AMX or AVX-512-BF16 units "
                                        "(slower elsewhere); patterns differ slightly from float32's")
        self.generate_button = QPushButton("Generate", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save gallery as PNG…", self)
        self.save_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Idle")
        self.gallery_view = ImageView(self, placeholder="Choose a conv layer and press Generate")
        self.pattern_view = ImageView(self, placeholder="click a pattern")
        self.pattern_title = QLabel("Pattern —", self)
        self.pattern_title.setWordWrap(True)
        self.gate.add(self.layer_combo)
        self.gate.add(self.generate_button)

        controls = control_row(self, "Layer:", (self.layer_combo, 1), "First:", self.first_spin, "Count:",
                               self.count_spin, "Steps:", self.steps_spin, self.precision_combo,
                               self.generate_button, self.cancel_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.save_button)
        side = QWidget(self)
        side.setFixedWidth(300)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.pattern_title)
        side_layout.addWidget(self.pattern_view, 1)
        body = QHBoxLayout()
        body.addWidget(self.gallery_view, 1)
        body.addWidget(side)
        self.assemble(controls, progress_row, (body, 1))

        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.gallery_view.clicked.connect(self._on_gallery_clicked)
        self.relayout_when_resized(self.gallery_view, self._relayout)
        self.follow_shared_model()

    # -- public API -----------------------------------------------------------------------------
    @Slot()
    def generate(self) -> None:
        """Start generating the patterns of the chosen filters (cancels a running generation)."""
        if self._loaded is None:
            self.status.setText("Load a model first.")
            return
        from engine.inspect.filters import FilterConfig  # noqa: PLC0415

        layer = self.layer_combo.currentData()
        config = FilterConfig(layer=layer or "", first=self.first_spin.value(), count=self.count_spin.value(),
                              steps=self.steps_spin.value(), precision=self.precision_combo.currentData(),
                              images_per_row=PER_ROW, margin=MARGIN)
        model = self._loaded.model

        def job(emit, cancel):
            from engine.inspect.filters import generate_patterns  # noqa: PLC0415

            return generate_patterns(model, config, emit, cancel)

        self._patterns, self._indices, self.result = {}, [], None
        self.gallery_view.clear("Generating…")
        self.pattern_view.clear("click a pattern")
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.save_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self.status.setText(f"Gradient ascent on {layer}, filters {config.first}–{config.first + config.count - 1}")
        self.start_job("Filter patterns", job)

    def gallery_image(self) -> np.ndarray | None:
        return self.gallery_view.image()

    def pattern_count(self) -> int:
        return len(self._indices)

    def save_gallery(self, path: str) -> None:
        from PIL import Image  # noqa: PLC0415

        from engine.atomic import save_with  # noqa: PLC0415

        image = self.gallery_view.image()
        if image is not None:
            save_with(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"), suffix=".png")

    # -- model ----------------------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        self.cancel()
        self._loaded = loaded
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        if loaded is not None:
            from engine.inspect.layers import list_layers  # noqa: PLC0415

            for info in list_layers(loaded.model):
                if info.is_conv:
                    channels = info.output_shape[-1] if info.output_shape else "?"
                    self.layer_combo.addItem(f"{info.path}  ({channels} filters)", info.path)
                    self.layer_combo.setItemData(self.layer_combo.count() - 1, channels, Qt.ItemDataRole.UserRole + 1)
        self.layer_combo.blockSignals(False)
        if loaded is not None and self.layer_combo.count() == 0:
            self.status.setText(f"Model '{loaded.model.name}' has no convolution layers: no filters to show.")
        else:
            self.status.setText("")
        self.generate_button.setEnabled(self.gate.ready and self.layer_combo.count() > 0)
        self._on_layer_changed(self.layer_combo.currentIndex())

    @Slot(int)
    def _on_layer_changed(self, index: int) -> None:
        channels = self.layer_combo.itemData(index, Qt.ItemDataRole.UserRole + 1) if index >= 0 else None
        if isinstance(channels, int):
            self.first_spin.setMaximum(max(channels - 1, 0))

    # -- job ----------------------------------------------------------------------------------
    def on_partial_result(self, event) -> None:
        from engine.events import PartialResult  # noqa: PLC0415

        if isinstance(event, PartialResult) and isinstance(event.value, np.ndarray):
            try:
                index = int(str(event.key).rsplit(":", 1)[1])
            except (IndexError, ValueError):
                return
            self._patterns[index] = event.value
            self._show_gallery()

    def on_progress(self, done: int, total: int) -> None:
        if not total:
            return  # a status line, not a step
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"step {done} / {total}")

    def columns_for(self, count: int, size: int) -> int:
        view_w, view_h = self.gallery_view.view_size()
        return best_columns(count, size, size, view_w, view_h, MARGIN)

    def _show_gallery(self, keep_view: bool = True) -> None:
        from engine.inspect.filters import gallery  # noqa: PLC0415

        self._indices = sorted(self._patterns)
        if not self._indices:
            return
        size = self._patterns[self._indices[0]].shape[0]
        expected = self.count_spin.value() if self.result is None else len(self._indices)
        # lay out for the whole requested range, so the grid does not jump while it fills
        self._columns = min(self.columns_for(max(expected, len(self._indices)), size), len(self._indices))
        image = gallery(np.stack([self._patterns[i] for i in self._indices]), self._columns, MARGIN)
        self.gallery_view.set_image(image, keep_view=keep_view)
        self.gallery_view.set_captions([
            ((n % self._columns) * (size + MARGIN) + 2, (n // self._columns) * (size + MARGIN) + 2, f"#{index}")
            for n, index in enumerate(self._indices)])
        self.save_button.setEnabled(True)

    @Slot()
    def _relayout(self) -> None:
        if not self._indices or not self.gallery_view.auto_fit:
            return
        size = self._patterns[self._indices[0]].shape[0]
        if min(self.columns_for(len(self._indices), size), len(self._indices)) != self._columns:
            self._show_gallery(keep_view=False)

    def on_done(self, result) -> None:
        self.result = result
        self._patterns = dict(zip(result.filter_indices, result.patterns))
        self._show_gallery()
        dead = int(np.sum(np.asarray(result.final_activation) == 0))
        note = f" {dead} of them never fired (no gradient: plain noise)." if dead else ""
        self._idle(f"{len(result.filter_indices)} patterns of {result.layer} ({result.precision}).{note} "
                   "Click one to enlarge it.")

    def on_exception(self, error: object) -> None:
        self.last_error = str(error)
        self._idle(f"⚠ {error}")

    def on_cancelled(self) -> None:
        self._idle(f"Cancelled: {len(self._patterns)} pattern(s) finished.")

    def _idle(self, message: str) -> None:
        self.generate_button.setEnabled(self.layer_combo.count() > 0)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.result is not None else 0)
        self.progress.setFormat("Done" if self.result is not None else "Idle")
        self.status.setText(message)

    # -- enlarge / save -------------------------------------------------------------------------
    @Slot(int, int)
    def _on_gallery_clicked(self, x: int, y: int) -> None:
        if not self._indices:
            return
        size = self._patterns[self._indices[0]].shape[0]
        cols = max(1, min(self._columns, len(self._indices)))
        col, row = x // (size + MARGIN), y // (size + MARGIN)
        if x % (size + MARGIN) >= size or y % (size + MARGIN) >= size or col >= cols:
            return
        position = row * cols + col
        if position < len(self._indices):
            self.show_pattern(self._indices[position])

    def show_pattern(self, filter_index: int) -> None:
        pattern = self._patterns.get(filter_index)
        if pattern is None:
            return
        self.current_filter = filter_index
        self.pattern_view.set_image(pattern)
        extra = ""
        if self.result is not None and filter_index in self.result.filter_indices:
            i = self.result.filter_indices.index(filter_index)
            extra = (f"<br>mean activation {self.result.start_activation[i]:.3g} on noise → "
                     f"{self.result.final_activation[i]:.3g} on the pattern")
            if self.result.final_activation[i] == 0:
                extra += "<br><i>This filter never fired from the start noise, so the ascent had no gradient "\
                         "(common for untrained or deep ReLU filters): the pattern is the noise itself.</i>"
        layer = self.result.layer if self.result is not None else self.layer_combo.currentData()
        self.pattern_title.setText(f"<b>Filter {filter_index}</b> of {layer}{extra}")

    @Slot()
    def _on_save_clicked(self) -> None:
        layer = (self.layer_combo.currentData() or "filters").replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Save gallery", f"{layer}_filters.png", "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.save_gallery(path)
            self.status.setText(f"Saved {path}")
