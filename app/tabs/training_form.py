"""The Training tab's settings form: strategy, base or preset, epochs, sizes, learning rate and
optimizer, augmentation, fine-tuning start; persisted in the settings and turned into the engine's
``TrainConfig``."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets.augment_preview import PRESET_SETTING
from app.widgets.controls import choice_combo
from app.widgets.tf_gate import TfGate

STRATEGY_LABELS = {
    "scratch": "Small convnet from scratch",
    "features": "Feature extraction (cached features)",
    "features-augmented": "Feature extraction with augmentation",
    "finetune": "Fine-tuning",
}
OPTIMIZER_LABELS = {"rmsprop": "RMSprop (the book's)", "adam-cosine": "Adam, warm-up + cosine decay"}
OPTIMIZER_TIPS = {
    "rmsprop": "RMSprop at a constant learning rate, as in the book",
    "adam-cosine": "Adam: the rate rises to the learning rate over the first epoch, then falls to 0 along a "
                   "cosine by the last epoch",
}
OPTIMIZER_HELP = ("RMSprop at a constant rate (the book's), or Adam with one epoch of warm-up, then a cosine "
                  "decay over the epochs.\nFine-tuning: for the fine-tuning phase; the head phase keeps RMSprop.")


class TrainingForm(QGroupBox):
    """The settings of the next training run, with its Start and Cancel buttons."""

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__("Settings", parent)
        self.context = context
        self._busy = False
        self._layers_job = None
        form_layout = QVBoxLayout(self)
        self.data_label = QLabel("No dataset: open one in the Dataset tab.")
        self.data_label.setWordWrap(True)
        form_layout.addWidget(self.data_label)
        form = self._form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        from engine.models.presets import OPTIMIZERS, PRESETS  # noqa: PLC0415 (no TensorFlow)
        from engine.train.config import STRATEGIES, STRATEGY_HELP  # noqa: PLC0415

        self.strategy_combo = choice_combo(self, [(STRATEGY_LABELS.get(name, name), name, STRATEGY_HELP.get(name, ""))
                                                  for name in STRATEGIES])
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy_changed)
        form.addRow("Strategy", self.strategy_combo)
        self.strategy_help = QLabel()
        self.strategy_help.setWordWrap(True)
        form.addRow(self.strategy_help)
        self.base_combo = self._base_combo()
        self.base_combo.currentIndexChanged.connect(self._on_base_changed)
        form.addRow("Base", self.base_combo)
        self.base_status = QLabel()
        self.base_status.setWordWrap(True)
        form.addRow(self.base_status)
        self.preset_combo = choice_combo(self, [(name, name, getattr(info, "description", ""))
                                                for name, info in PRESETS.items()])
        self.preset_combo.currentIndexChanged.connect(self._show_default_size)
        form.addRow("Model preset", self.preset_combo)
        self.epochs_spin = _spin(1, 1000)
        form.addRow("Epochs", self.epochs_spin)
        self.batch_spin = _spin(1, 4096)
        form.addRow("Batch size", self.batch_spin)
        self.size_spin = _spin(0, 1024, zero_means="default")
        self.size_spin.setSuffix(" px")
        form.addRow("Image size", self.size_spin)
        self.lr_edit = QLineEdit()
        self.lr_edit.setPlaceholderText("default for the strategy")
        self.lr_edit.setToolTip("The optimizer's learning rate (Adam with warm-up + cosine decay: its peak, after "
                                "the first epoch); empty: the strategy's default (fine-tuning: 1e-5 with "
                                "RMSprop, 3e-4 with Adam)")
        form.addRow("Learning rate", self.lr_edit)
        self.optimizer_combo = choice_combo(self, [(OPTIMIZER_LABELS.get(name, name), name,
                                                    OPTIMIZER_TIPS.get(name, "")) for name in OPTIMIZERS],
                                            tooltip=OPTIMIZER_HELP)
        form.addRow("Optimizer", self.optimizer_combo)
        augment_row = QHBoxLayout()
        self.augment_check = QCheckBox("on")
        from engine.data.augment import AUGMENTATION_PRESETS  # noqa: PLC0415 (no TensorFlow)

        self.augmentation_combo = choice_combo(self, [(name, name, description)
                                                      for name, description in AUGMENTATION_PRESETS.items()])
        augment_row.addWidget(self.augment_check)
        augment_row.addWidget(self.augmentation_combo, 1)
        form.addRow("Augmentation", augment_row)
        self.finetune_combo = QComboBox()
        self.finetune_combo.addItem("base default", None)
        self.finetune_combo.setToolTip("The layer of the base that fine-tuning unfreezes from")
        form.addRow("Fine-tune from", self.finetune_combo)
        self.limit_spin = _spin(0, 100000, zero_means="all")
        self.limit_spin.setToolTip("Use at most this many images per class (quick experiments)")
        form.addRow("Images per class", self.limit_spin)
        self.precision_combo = self._precision_combo()
        form.addRow("Precision", self.precision_combo)
        form_layout.addLayout(form)
        self.tf_gate = TfGate(context, parent=self, text="Loading TensorFlow…")
        form_layout.addWidget(self.tf_gate)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start training (Ctrl+R)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current batch; last.keras is kept (Esc)")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        form_layout.addLayout(buttons)
        form_layout.addStretch(1)
        self.setMinimumWidth(390)
        self._form_widgets = [self.strategy_combo, self.base_combo, self.preset_combo, self.epochs_spin,
                              self.batch_spin, self.size_spin, self.lr_edit, self.optimizer_combo,
                              self.augment_check, self.augmentation_combo, self.limit_spin, self.precision_combo]
        for widget in (self.start_button, self.finetune_combo):
            self.tf_gate.add(widget)
        self.load_settings()
        if self.base_combo.currentIndex() >= 0 and not self.base_combo.model().item(
                self.base_combo.currentIndex()).isEnabled():
            self._select_data(self.base_combo, next((self.base_combo.itemData(i) for i in range(self.base_combo.count())
                                                     if self.base_combo.model().item(i).isEnabled()), None))
        context.dataset_changed.connect(self._on_dataset_changed)
        context.augmentation_chosen.connect(self._on_augmentation_chosen)
        context.tf_ready.connect(self._on_tf_ready)
        self._on_strategy_changed()

    @property
    def setting_widgets(self) -> list[QWidget]:
        """The widgets that hold a setting (a section below may follow their changes)."""
        return list(self._form_widgets)

    def add_section(self, widget: QWidget) -> None:
        """Put ``widget`` (the cluster panel) below the settings, above the Start button."""
        layout = self.layout()
        layout.insertWidget(layout.indexOf(self.tf_gate), widget)

    def set_busy(self, busy: bool) -> None:
        """While a run trains the form is read-only and Cancel is the one button."""
        self._busy = busy
        for widget in self._form_widgets:
            widget.setEnabled(not busy)
        if not busy:
            self.augment_check.setEnabled(self.strategy_combo.currentData() != "features")
        self.tf_gate.set_busy(busy)
        self.cancel_button.setEnabled(busy)

    def runs_root(self) -> str:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        return self.context.settings.value("training/runs_root", "", str) or str(default_runs_dir())

    # ---- settings persistence
    def _base_combo(self):
        """The bases; one without weights is listed but cannot be chosen: every strategy that uses a
        base (feature extraction, fine-tuning) needs its pretrained weights."""
        from engine.bases.registry import all_bases  # noqa: PLC0415 (no TensorFlow)

        choices, missing = [], []
        for spec in all_bases():
            try:
                status = spec.weights_status()
                ready, weights = status.present, ("weights ready" if status.present else f"no weights: {status.source}")
            except Exception as error:  # noqa: BLE001 - a registry entry must not break the form
                ready, weights = False, f"weights unknown ({error})"
            if not ready:
                weights += "\nNot available: feature extraction and fine-tuning need the pretrained weights."
                missing.append(len(choices))
            choices.append((spec.label + ("" if ready else " — no weights"), spec.name, f"{spec.label}\n{weights}"))
        combo = choice_combo(self, choices)
        for index in missing:
            combo.model().item(index).setEnabled(False)
        return combo

    def _precision_combo(self):
        """float32 (the default) or a mixed precision; "Auto" names what it picks on this machine and
        why (engine.precision: the one decision the CLI and the Filters tab use too)."""
        from engine.precision import choose_precision, gpu_compute_capability  # noqa: PLC0415 (no TensorFlow)

        auto = choose_precision("auto", gpu=gpu_compute_capability(load_tensorflow=False))
        return choice_combo(self, [
            ("float32", "float32", "Full precision: the same numbers on every machine"),
            (f"Auto ({auto.policy} here)", "auto", auto.reason[0].upper() + auto.reason[1:]),
            ("mixed_bfloat16", "mixed_bfloat16", "Fast only on CPUs with AMX or AVX-512-BF16 units; "
                                                 "emulated elsewhere (several times slower)"),
            ("mixed_float16", "mixed_float16", "For GPUs with tensor cores"),
        ])

    @Slot()
    def _show_default_size(self, *_args) -> None:
        """"Image size: default (150 px)": what the default is for this strategy and model."""
        from engine.bases.registry import get_base  # noqa: PLC0415 (no TensorFlow)
        from engine.models.presets import get_preset  # noqa: PLC0415

        try:
            if self.strategy_combo.currentData() == "scratch":
                size = get_preset(self.preset_combo.currentData()).default_image_size
            else:
                size = get_base(self.base_combo.currentData()).input_size
            self.size_spin.setSpecialValueText(f"default ({size} px)")
        except Exception:  # noqa: BLE001 - an unknown name: the plain word
            self.size_spin.setSpecialValueText("default")

    @Slot(str)
    def _on_augmentation_chosen(self, preset: str) -> None:
        """The Dataset tab's preview preset becomes the one training uses."""
        self._select_data(self.augmentation_combo, preset)

    def load_settings(self) -> None:
        s = self.context.settings
        self._select_data(self.strategy_combo, s.value("training/strategy", "scratch", str))
        self._select_data(self.base_combo, s.value("training/base", "efficientnet-lite0", str))
        self._select_data(self.preset_combo, s.value("training/preset", "book-scratch", str))
        self.epochs_spin.setValue(s.value("training/epochs", 30, int))
        self.batch_spin.setValue(s.value("training/batch_size", 32, int))
        self.size_spin.setValue(s.value("training/image_size", 0, int))
        self.lr_edit.setText(s.value("training/learning_rate", "", str))
        self._select_data(self.optimizer_combo, s.value("training/optimizer", "rmsprop", str))
        self.augment_check.setChecked(s.value("training/augment", False, bool))
        # the preset last previewed on the Dataset tab, unless one was chosen here since
        self._select_data(self.augmentation_combo, s.value("training/augmentation", "", str)
                          or s.value(PRESET_SETTING, "book", str))
        self.limit_spin.setValue(s.value("training/max_per_class", 0, int))
        self._select_data(self.precision_combo, s.value("training/precision", "float32", str))

    def save_settings(self) -> None:
        values = self.form_config()
        s = self.context.settings
        s.set_value("training/strategy", values.strategy)
        s.set_value("training/base", values.base)
        s.set_value("training/preset", values.preset)
        s.set_value("training/epochs", values.epochs)
        s.set_value("training/batch_size", values.batch_size)
        s.set_value("training/image_size", values.image_size or 0)
        s.set_value("training/learning_rate", self.lr_edit.text().strip())
        s.set_value("training/optimizer", values.optimizer)
        s.set_value("training/augment", self.augment_check.isChecked())
        s.set_value("training/augmentation", values.augmentation)
        s.set_value("training/max_per_class", values.max_per_class or 0)
        s.set_value("training/precision", values.precision)

    @staticmethod
    def _select_data(combo: QComboBox, value) -> None:
        index = combo.findData(value)
        if index >= 0:
            combo.setCurrentIndex(index)

    # ---- form
    def form_config(self):
        """The form's values as the engine's ``TrainConfig`` (no TensorFlow import). The form's own
        rules: no augmentation for cached features, a fine-tuning start layer only for fine-tuning,
        TensorBoard off (the tab draws the curves), the Dataset tab's seed."""
        from engine.train.config import TrainConfig  # noqa: PLC0415

        text = self.lr_edit.text().strip()
        try:
            learning_rate = float(text) if text else None
        except ValueError:
            learning_rate = float("nan")  # start() names the fix
        dataset = self.context.dataset
        strategy = self.strategy_combo.currentData()
        return TrainConfig(
            data=dataset.root if dataset is not None else "",
            strategy=strategy,
            base=self.base_combo.currentData() or "efficientnet-lite0",
            preset=self.preset_combo.currentData() or "book-scratch",
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            image_size=self.size_spin.value() or None,
            learning_rate=learning_rate,
            optimizer=self.optimizer_combo.currentData() or "rmsprop",
            augment=False if strategy == "features" else self.augment_check.isChecked(),
            augmentation=self.augmentation_combo.currentData() or "mild",
            finetune_from=self.finetune_combo.currentData() if strategy == "finetune" else None,
            max_per_class=self.limit_spin.value() or None,
            precision=self.precision_combo.currentData() or "float32",
            seed=self.context.settings.value("dataset/seed", 0, int),
            runs_root=self.runs_root(),
            tensorboard=False,
        )

    @Slot()
    def _on_strategy_changed(self, *_args) -> None:
        strategy = self.strategy_combo.currentData()
        from engine.train.config import STRATEGY_HELP  # noqa: PLC0415

        self.strategy_help.setText(STRATEGY_HELP.get(strategy, ""))
        uses_base = strategy != "scratch"
        self.base_combo.setVisible(uses_base)
        self.base_status.setVisible(uses_base)
        self._form_label(self.base_combo).setVisible(uses_base)
        self.preset_combo.setVisible(not uses_base)
        self._form_label(self.preset_combo).setVisible(not uses_base)
        can_augment = strategy != "features"
        self.augment_check.setEnabled(can_augment and not self._busy)
        if strategy in ("features-augmented", "finetune"):
            self.augment_check.setChecked(True)
        elif strategy == "features":
            self.augment_check.setChecked(False)
        finetune = strategy == "finetune"
        self.finetune_combo.setVisible(finetune)
        self._form_label(self.finetune_combo).setVisible(finetune)
        self._on_base_changed()

    def _form_label(self, field_widget) -> QWidget:
        label = self._form.labelForField(field_widget)
        return label if label is not None else QLabel()

    @Slot()
    def _on_base_changed(self, *_args) -> None:
        self._show_default_size()
        name = self.base_combo.currentData()
        if not name:
            return
        from engine.bases.registry import get_base  # noqa: PLC0415

        try:
            spec = get_base(name)
            status = spec.weights_status()
            # The combo may elide a long label; the honest description is always readable here.
            text = f"<b>{html.escape(spec.label)}</b><br>"
            text += ("Weights: ready ✓" if status.present
                     else f"<span style='color:#d94848'>No weights: {html.escape(status.source)}</span>")
            self.base_status.setToolTip(status.source)
            self.base_combo.setToolTip(spec.label)
            if spec.attribution:
                text += f"<br><small>{spec.attribution}</small>"
        except Exception as error:  # noqa: BLE001
            text = str(error)
        self.base_status.setText(text)
        # A wrapped rich-text label in a form row gets too little height from heightForWidth:
        # reserve its lines (each <br> line may wrap once in this narrow panel).
        lines = 2 * (text.count("<br>") + 1)
        self.base_status.setMinimumHeight(self.base_status.fontMetrics().lineSpacing() * lines)
        self.finetune_combo.clear()
        self.finetune_combo.addItem("base default", None)
        if self.strategy_combo.currentData() == "finetune" and self.context.tf_is_ready:
            self._load_finetune_layers(name)

    @Slot()
    def _on_tf_ready(self) -> None:
        if self.strategy_combo.currentData() == "finetune":
            self._load_finetune_layers(self.base_combo.currentData())

    def _load_finetune_layers(self, base_name: str) -> None:
        def job(emit, cancel):
            from engine.bases.registry import get_base  # noqa: PLC0415
            from engine.bases.locate import finetune_layer_names  # noqa: PLC0415

            spec = get_base(base_name)
            base = spec.build(include_top=False)
            return base_name, spec.finetune_from, finetune_layer_names(base)

        self._layers_job = self.context.runner.start("Listing the base's layers", job, group="finetune layers")
        self._layers_job.finished.connect(self._on_finetune_layers)

    @Slot(object)
    def _on_finetune_layers(self, result) -> None:
        base_name, default, names = result
        if base_name != self.base_combo.currentData():
            return
        self.finetune_combo.clear()
        self.finetune_combo.addItem(f"base default ({default})", None)
        for name in names:
            self.finetune_combo.addItem(name, name)

    @Slot(object)
    def _on_dataset_changed(self, scan) -> None:
        self.data_label.setText(f"Dataset: <b>{os.path.basename(scan.root)}</b> — {scan.num_images} images, "
                                f"{len(scan.classes)} classes ({', '.join(scan.classes[:6])}"
                                f"{'…' if len(scan.classes) > 6 else ''})")
        self.data_label.setToolTip(scan.root)


def _spin(low: int, high: int, zero_means: str = "") -> QSpinBox:
    """A spin box from ``low`` to ``high``; ``zero_means`` is what it shows at 0 (0 = unset)."""
    spin = QSpinBox()
    spin.setRange(low, high)
    if zero_means:
        spin.setSpecialValueText(zero_means)
    return spin
