"""The shared "Model: [run ▾ | ImageNet base | .keras file…]" picker and the image picker row.

The model picker only chooses a *source*; loading goes through ``context.open_model`` (which runs
in the job runner and then emits ``context.model_changed``), so every inspection tab shows the same
model. The image picker offers the bundled photos of ``resources/samples`` and a file dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from engine import paths

IMAGENET_BASE = "efficientnet-lite0"

TRUST_TOOLTIP = (
    "A .keras file can contain Python code (Lambda layers, custom objects). ConvScope's safe loader "
    "refuses such files because loading them runs that code with your permissions.\n"
    "Tick this only for a file you made yourself or got from someone you trust."
)

def image_extensions() -> tuple[str, ...]:
    from engine.data.images import IMAGE_EXTENSIONS  # noqa: PLC0415 - PIL only, no TensorFlow

    return tuple(sorted(IMAGE_EXTENSIONS))


def is_image_file(path: str) -> bool:
    return Path(path).suffix.lower() in image_extensions()


def image_file_filter() -> str:
    patterns = " ".join(f"*{ext}" for ext in image_extensions())
    return f"Images ({patterns});;All files (*)"


def sample_images() -> list[Path]:
    """The bundled photos (``resources/samples``), sorted by name."""
    folder = paths.resources_dir() / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in image_extensions())


def _list_run_dirs() -> list[tuple[str, str]]:
    """(label, run folder) of the finished runs under the default runs folder, newest first."""
    root = paths.default_runs_dir()
    try:
        from engine.train.rundir import list_runs  # noqa: PLC0415

        runs = list_runs(root)
    except Exception:  # noqa: BLE001 - the runs list is a convenience; a broken folder must not break the tab
        runs = None
    found: list[tuple[str, str]] = []
    if runs is not None:
        for info in runs:
            run_dir = str(getattr(info, "run_dir", getattr(info, "path", info)))
            if any((Path(run_dir) / name).is_file() for name in ("best.keras", "last.keras")):
                found.append((Path(run_dir).name, run_dir))
        return found
    candidates = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        if (run_dir / "best.keras").is_file() or (run_dir / "last.keras").is_file():
            found.append((run_dir.name, str(run_dir)))
    return found


class ModelSourcePicker(QWidget):
    """Model: [combo] [Browse…] [☐ Trust this file]  — shows which model is loaded."""

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(34)  # "ImageNet base — EfficientNet-Lite0" whole
        self._hint = "A finished training run, the bundled ImageNet base, or a .keras file"
        self.combo.setToolTip(self._hint)
        self.combo.currentIndexChanged.connect(self._update_tooltip)
        self.browse_button = QPushButton("Model file…", self)
        self.browse_button.setToolTip("Open a .keras model file")
        self.load_button = QPushButton("Load", self)
        self.trust_box = QCheckBox("Trust this file", self)
        self.trust_box.setToolTip(TRUST_TOOLTIP)
        self.status = QLabel("No model loaded", self)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setWordWrap(True)  # a refusal's reason is a sentence; it wraps instead of being cut
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Model:", self))
        layout.addWidget(self.combo)
        layout.addWidget(self.load_button)
        layout.addWidget(self.browse_button)
        layout.addWidget(self.trust_box)
        layout.addWidget(self.status, 1)

        self.combo.activated.connect(self._on_activated)
        self.load_button.clicked.connect(self.load_current)
        self.browse_button.clicked.connect(self._browse)
        context.model_changed.connect(self._on_model_changed)
        if hasattr(context, "model_failed"):
            context.model_failed.connect(self._on_model_failed)
        if hasattr(context, "run_finished"):
            context.run_finished.connect(self._on_run_finished)
        self.refresh()
        if getattr(context, "current_model", None) is not None:
            self._on_model_changed(context.current_model)

    # -- public -----------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Re-read the list of runs (keeps the current choice when it is still there)."""
        current = self.combo.currentData()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("ImageNet base — EfficientNet-Lite0", IMAGENET_BASE)
        for label, run_dir in _list_run_dirs():
            self.combo.addItem(f"Run: {label}", run_dir)
            self.combo.setItemData(self.combo.count() - 1, run_dir, Qt.ItemDataRole.ToolTipRole)
        index = self.combo.findData(current) if current is not None else -1
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)

    def add_source(self, source: str, label: str | None = None) -> int:
        index = self.combo.findData(source)
        if index < 0:
            self.combo.addItem(label or f"File: {Path(source).name}", source)
            index = self.combo.count() - 1
            self.combo.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
        self.combo.setCurrentIndex(index)
        return index

    def open_source(self, source: str) -> None:
        """Load ``source`` (run folder, .keras file or base name) through the context."""
        self.add_source(source)
        self.status.setText(f"Loading {Path(source).name}…")
        self._context.open_model(source, trust=self.trust_box.isChecked())

    @Slot()
    def load_current(self) -> None:
        source = self.combo.currentData()
        if source:
            self.open_source(source)

    # -- slots ------------------------------------------------------------------------------
    @Slot(int)
    def _update_tooltip(self, index: int) -> None:
        """The whole choice in the tooltip (a long run name is cut in the combo)."""
        text = self.combo.itemText(index) if index >= 0 else ""
        source = self.combo.itemData(index) if index >= 0 else ""
        detail = f"{text}\n{source}" if source and source not in text else text
        self.combo.setToolTip(f"{detail}\n\n{self._hint}" if detail else self._hint)

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        self.load_current()

    @Slot()
    def _browse(self) -> None:
        settings = self._context.settings
        start = settings.value("folders/model", "", str) or str(paths.default_runs_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Open a Keras model", start, "Keras models (*.keras);;All files (*)")
        if path:
            settings.set_value("folders/model", str(Path(path).parent))
            self.open_source(path)

    @Slot(object)
    def _on_model_changed(self, loaded) -> None:
        if loaded is None:
            self.status.setText("No model loaded")
            return
        label = getattr(loaded, "label", "") or Path(str(getattr(loaded, "source", ""))).name
        self.status.setText(f"Loaded: {label}")
        self.status.setToolTip(str(getattr(loaded, "source", "")))
        source = str(getattr(loaded, "source", "") or "")
        if source:
            self.combo.blockSignals(True)
            self.add_source(source, None if self.combo.findData(source) >= 0 else f"{label}")
            self.combo.blockSignals(False)

    @Slot(str, str)
    def _on_model_failed(self, source: str, message: str) -> None:
        """Inline, beside the picker: the file was refused or failed to load; the model shown before
        (if any) is still the one loaded."""
        name = Path(source).name or source
        reason = message[len(source) + 2:] if message.startswith(f"{source}: ") else message
        self.status.setText(f"⚠ {name} not loaded: {reason}")
        self.status.setToolTip(message)
        loaded = getattr(self._context, "current_model", None)
        if loaded is not None and self.combo.findData(str(loaded.source)) >= 0:
            self.combo.blockSignals(True)  # the picker names the model that is still loaded
            self.combo.setCurrentIndex(self.combo.findData(str(loaded.source)))
            self.combo.blockSignals(False)

    @Slot(str)
    def _on_run_finished(self, run_dir: str) -> None:
        self.refresh()


class ImagePicker(QWidget):
    """Image: [bundled samples ▾] [Image file…] — emits :attr:`image_selected` with a path."""

    image_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None, settings=None) -> None:
        super().__init__(parent)
        self._settings = settings  # AppSettings: the file dialog opens where the last image was
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        self.combo.setToolTip("Bundled sample photos; you can also drop an image file on this tab")
        self.combo.currentIndexChanged.connect(self._update_tooltip)
        self.browse_button = QPushButton("Image file…", self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Image:", self))
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse_button)
        self.combo.addItem("(choose an image)", "")
        for sample in sample_images():
            self.combo.addItem(sample.stem.replace("_", " "), str(sample))
        self.combo.activated.connect(self._on_activated)
        self.browse_button.clicked.connect(self._browse)

    def set_path(self, path: str) -> None:
        """Show ``path`` as the current image (without emitting)."""
        index = self.combo.findData(path)
        if index < 0:
            self.combo.addItem(Path(path).name, path)
            index = self.combo.count() - 1
            self.combo.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)

    def current_path(self) -> str:
        return self.combo.currentData() or ""

    def offer(self, path: str) -> None:
        """List ``path`` (an image chosen on another tab) first among the choices, without choosing it."""
        if self.combo.findData(path) >= 0:
            return
        self.combo.insertItem(1, Path(path).name, path)
        self.combo.setItemData(1, path, Qt.ItemDataRole.ToolTipRole)

    @Slot(int)
    def _update_tooltip(self, index: int) -> None:
        path = self.combo.itemData(index) if index >= 0 else ""
        hint = "Bundled sample photos; you can also drop an image file on this tab"
        self.combo.setToolTip(f"{path}\n\n{hint}" if path else hint)

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        path = self.combo.itemData(index)
        if path:
            self.image_selected.emit(path)

    @Slot()
    def _browse(self) -> None:
        start = ""
        if self._settings is not None:  # the last image's folder, else the dataset's
            start = self._settings.value("folders/images", "", str) or self._settings.value("folders/dataset", "", str)
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", start, image_file_filter())
        if path:
            if self._settings is not None:
                self._settings.set_value("folders/images", str(Path(path).parent))
            self.set_path(path)
            self.image_selected.emit(path)


def dropped_image_path(mime) -> str | None:
    """The first local image file in a drag's mime data, or ``None``."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and is_image_file(url.toLocalFile()):
            return url.toLocalFile()
    return None
