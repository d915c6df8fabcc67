"""Grad-CAM tab: where in the image the model found the evidence for a class (Chollet 5.4.3).

Image + model + class (the model's top-k prediction, or any class by name or index) + method
(Grad-CAM, Grad-CAM++, Score-CAM, saliency) + target layer (the engine's default unless chosen) +
input. Everything comes from :func:`engine.inspect.explain.explain` in the job runner — the same
route as ``convscope gradcam``, with the same input protocol (its docstring): the prediction list
and the map are computed on the *same* array, so the class probability in the panel is the one
listed. The overlay is re-blended on the GUI thread when the opacity slider moves
(``engine.inspect.cam.overlay`` is cheap).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.tabs.gradcam_text import explanation_lines, format_probability, overlay_file_name, with_caption
from app.tabs.inspection import InspectionTab
from app.widgets.controls import choice_combo, control_row
from app.widgets.faithfulness import FaithfulnessPanel
from app.widgets.image_view import ImageView

INPUT_LABELS = (("Whole photo", "whole"), ("As convscope predict", "predict"), ("Squashed to the model's square", "resize"))
TARGET_LABELS = (("Logit", "logit"), ("Probability", "probability"))
CLASS_TIP = "Leave empty for the predicted class; or pick one in the list on the left"
METHOD_LABELS = (("Grad-CAM", "gradcam"), ("Grad-CAM++", "gradcam++"), ("Score-CAM", "scorecam"),
                 ("Saliency (gradients)", "saliency"))


class GradCamTab(InspectionTab):
    title = "Grad-CAM"
    trust_done = Signal()  # the faithfulness panel shows the scores of the current map (or why not)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._class_names: list[str] = []
        self._pixels: np.ndarray | None = None  # the photo as read
        self._shown: np.ndarray | None = None  # what the heatmap is drawn over: the photo or the model's crop
        self._heatmap: np.ndarray | None = None
        self._class_index: int | None = None  # requested; None = the predicted class
        self._default_layer: str | None = None
        self._map_sizes: dict[str, tuple[int, int]] = {}
        self.result = None  # the last engine CamResult
        self.explanation = None  # the last engine Explanation
        self._trust_handle = None  # the faithfulness job of the shown explanation
        self.top: list[tuple[int, str, float]] = []
        self.input_text = ""  # which input the prediction and the map were computed on

        self.input_combo = choice_combo(self, INPUT_LABELS, "Whole photo: the heatmap covers everything you see. "
                                        "As convscope predict: the exact input the CLI and the Evaluation tab "
                                        "classify (for ImageNet models the centre crop)")
        self.method_combo = choice_combo(self, METHOD_LABELS)
        self.target_combo = choice_combo(self, TARGET_LABELS, "What a softmax head's map differentiates: the "
                                         "class's pre-softmax score (logit, as the Grad-CAM paper) or its "
                                         "probability; the faithfulness scores below help choose")
        self.trust_panel = FaithfulnessPanel(self)
        self.layer_combo = QComboBox(self)
        self.layer_combo.setMinimumContentsLength(22)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setToolTip("The feature map to explain (Grad-CAM looks at the last conv layer by default)")
        self.class_edit = QLineEdit(self)
        self.class_edit.setPlaceholderText("any class: name or index")
        self.class_edit.setToolTip(CLASS_TIP)
        self.run_button = QPushButton("Explain", self)
        self.run_button.setDefault(True)
        self.top_list = QListWidget(self)
        self.top_list.setToolTip("The model's prediction; click a class to see its evidence")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.opacity_label = QLabel("40 %", self)
        self.save_button = QPushButton("Save overlay as PNG…", self)
        self.caption_box = QCheckBox("with a caption", self)
        self.caption_box.setToolTip("A strip below the image: photo, model, class, probability, method, layer")
        self.save_button.setEnabled(False)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.original_view = ImageView(self, placeholder="Original")
        self.overlay_view = ImageView(self, placeholder="Overlay")
        self.status.setText("Pick a model and an image (or drop an image file here).")
        for widget in (self.run_button, self.class_edit, self.layer_combo, self.top_list):
            self.gate.add(widget)

        controls = control_row(self, "Input:", self.input_combo, "Method:", self.method_combo, "Target:",
                               self.target_combo, "Layer:", (self.layer_combo, 1), "Class:", (self.class_edit, 1),
                               self.run_button)
        side = QWidget(self)
        side.setFixedWidth(290)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        header = QLabel("<b>Prediction</b> on the explained input (click a class)", self)
        header.setWordWrap(True)
        side_layout.addWidget(header)
        side_layout.addWidget(self.top_list, 1)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity:", self))
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_label)
        side_layout.addLayout(opacity_row)
        side_layout.addLayout(control_row(self, self.save_button, self.caption_box))
        side_layout.addWidget(self.info, 2)
        side_layout.addWidget(self.trust_panel)
        views = QGridLayout()
        self.original_label = QLabel("Original", self)
        views.addWidget(self.original_label, 0, 0)
        views.addWidget(QLabel("Heatmap overlay", self), 0, 1)
        views.addWidget(self.original_view, 1, 0)
        views.addWidget(self.overlay_view, 1, 1)
        views.setRowStretch(1, 1)
        body = QHBoxLayout()
        body.addWidget(side)
        body.addLayout(views, 1)
        self.assemble(self.image_picker, controls, (body, 1))

        self.run_button.clicked.connect(self._on_run_clicked)
        self.class_edit.returnPressed.connect(self._on_run_clicked)
        self.top_list.itemClicked.connect(self._on_top_clicked)
        for combo in (self.input_combo, self.method_combo, self.target_combo, self.layer_combo):
            combo.activated.connect(self._on_choice_activated)  # user choices only, not programmatic ones
        self.opacity.valueChanged.connect(self._reblend)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.follow_shared_model()
        context.explain_image.connect(self.show_image)

    # -- public API -----------------------------------------------------------------------------
    @Slot(str)
    def show_image(self, path: str, class_index: int | None = None) -> None:
        """Explain ``path`` (for ``class_index``, default the predicted class)."""
        self._class_index = class_index
        super().show_image(path)

    def image_changed(self) -> None:
        self._pixels = None
        self.class_edit.clear()
        self.run()

    def set_method(self, key: str) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(key))

    @Slot()
    def run(self) -> None:
        """Predict and compute the map for the current image, class, method and layer."""
        if self._loaded is None or not self._image_path:
            self.status.setText("Pick a model and an image first.")
            return
        loaded, path, pixels = self._loaded, self._image_path, self._pixels
        typed = self.class_edit.text().strip()
        request = self.request(typed or self._class_index)

        def job(emit, cancel):
            from engine.data.images import read_image_file  # noqa: PLC0415
            from engine.events import Status  # noqa: PLC0415
            from engine.inspect.explain import explain  # noqa: PLC0415

            image = pixels if pixels is not None else read_image_file(path)
            emit(Status(f"Explaining {Path(path).name}"))
            explanation = explain(loaded, image, request, cancel)
            return {"image": image, "explanation": explanation, "model": loaded.model, "path": path}

        self._cancel_trust()

        self.run_button.setEnabled(False)
        self.status.setText("Computing…")
        self.start_job("Grad-CAM", job)

    def request(self, class_: int | str | None = None):
        """The engine request the controls describe (``class_``: None for the predicted class)."""
        from engine.inspect.explain import ExplainRequest  # noqa: PLC0415

        return ExplainRequest(method=self.method_combo.currentData(), class_=class_,
                              layer=self.layer_combo.currentData(), input=self.input_combo.currentData(),
                              target=self.target_combo.currentData())

    def overlay_image(self) -> np.ndarray | None:
        return self.overlay_view.displayed_image()

    def save_overlay(self, path: str, caption: bool | None = None) -> None:
        """Write the overlay as it is shown (current opacity) to ``path`` as a PNG; with ``caption``
        (default: the tick box) a strip below names model, class, probability, method and layer."""
        from PIL import Image  # noqa: PLC0415

        from engine.atomic import save_with  # noqa: PLC0415

        image = self.overlay_view.image()
        if image is None:
            return
        if self.caption_box.isChecked() if caption is None else caption:
            image = with_caption(image, self.caption_text())
        save_with(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"), suffix=".png")

    # -- model ----------------------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        self._loaded = loaded
        self._class_index = None  # the previous model's class means nothing to this one
        self.class_edit.clear()
        self._heatmap = None
        self.result = None
        self._cancel_trust()
        self.trust_panel.clear()
        self.top_list.clear()
        self.overlay_view.clear("Overlay")
        self.save_button.setEnabled(False)
        self.layer_combo.clear()
        self._class_names = []
        if loaded is None:
            return
        from engine.errors import ConvScopeError  # noqa: PLC0415
        from engine.inspect.cam import class_count, default_cam_layer  # noqa: PLC0415
        from engine.inspect.layers import list_layers  # noqa: PLC0415
        from engine.predict import class_names_for  # noqa: PLC0415

        try:
            self._default_layer = default_cam_layer(loaded.model)
            self.layer_combo.addItem(f"default: {self._default_layer}", None)
            self.status.setText("Ready." if self._image_path else "Pick an image (or drop one here).")
        except ConvScopeError as error:
            self._default_layer = None
            self.layer_combo.addItem("(no conv layer)", None)
            self.status.setText(f"⚠ {error}")
        self._map_sizes = {}  # layer path → (h, w) of its feature map, in model order
        for info in list_layers(loaded.model):
            if info.is_spatial and not info.is_model:
                self.layer_combo.addItem(info.path, info.path)
                if info.is_conv and info.output_shape and None not in info.output_shape[1:3]:
                    self._map_sizes[info.path] = tuple(info.output_shape[1:3])
        try:
            self._class_names = class_names_for(loaded, class_count(loaded.model))
        except ConvScopeError:
            self._class_names = []
        if loaded.kind == "imagenet":
            from engine.imagenet import class_names  # noqa: PLC0415

            completions = class_names()
        else:
            completions = self._class_names
        completer = QCompleter(completions, self.class_edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.class_edit.setCompleter(completer)
        if self._image_path:
            self.when_shown(self.run)

    # -- job outcome ----------------------------------------------------------------------------
    def on_done(self, outcome: dict) -> None:
        self.class_edit.setStyleSheet("")
        self.class_edit.setToolTip(CLASS_TIP)
        self._show_explanation(outcome)
        if self.explanation is outcome["explanation"]:
            self._start_trust(self._loaded, outcome["explanation"])

    # -- the faithfulness panel: its own job, so the map shows while its scores are computed ---------
    def _start_trust(self, loaded, explanation) -> None:
        def job(emit, cancel):
            from engine.errors import ConvScopeError  # noqa: PLC0415
            from engine.inspect.explain import assess  # noqa: PLC0415

            try:
                return explanation, assess(loaded, explanation, cancel=cancel)
            except ConvScopeError as error:  # e.g. a model the sanity check cannot copy: the map stands
                return explanation, f"No faithfulness scores: {error}"

        self.trust_panel.clear("Scoring the map (deletion, insertion, ROAD, sanity check)…")
        self._trust_handle = self.context.runner.start("Faithfulness", job, group=f"{self.title} scores")
        self._trust_handle.finished.connect(self._on_trust_finished)
        self._trust_handle.failed.connect(self._on_trust_failed)

    def _cancel_trust(self) -> None:
        if self._trust_handle is not None and self._trust_handle.running:
            self._trust_handle.cancel()
        self._trust_handle = None

    @Slot(object)
    def _on_trust_finished(self, result) -> None:
        explanation, trust = result
        if self.sender() is self._trust_handle and explanation is self.explanation:
            self.trust_panel.show_trust(trust)
            self.trust_done.emit()

    @Slot(object)
    def _on_trust_failed(self, error: object) -> None:
        if self.sender() is self._trust_handle:
            self.trust_panel.clear(f"No faithfulness scores: {error}")
            self.trust_done.emit()

    def _show_explanation(self, outcome: dict) -> None:
        self.run_button.setEnabled(True)
        if self._loaded is None or outcome["model"] is not self._loaded.model or outcome["path"] != self._image_path:
            return
        self._pixels = outcome["image"]
        explained = self.explanation = outcome["explanation"]
        self._shown, result = explained.shown, explained.cam
        self.result, self.top = result, explained.top
        self._heatmap = explained.heatmap
        self._fill_top(explained.top, result.class_index, result.score)
        self.original_view.set_image(self._shown)
        self.original_label.setText("Original" if explained.whole_photo else "The model's input (as convscope predict)")
        self._reblend(keep_view=False)
        self.save_button.setEnabled(True)
        name = explained.class_name
        self.input_text = explained.input_text
        self.info.setText("<br>".join(explanation_lines(explained, self.method_combo.currentText(),
                                                        self._map_sizes.get(result.layer),
                                                        self._finer_layer(result.layer))))
        self.status.setText(f"{Path(self._image_path).name}: evidence for '{name or result.class_index}'.")

    def on_exception(self, error: object) -> None:
        self.run_button.setEnabled(True)
        self.trust_panel.clear()
        super().on_exception(error)
        if str(error).startswith("class ") or "unknown class" in str(error):  # the class field's fault
            self.class_edit.setStyleSheet("border: 1px solid #c0392b;")
            self.class_edit.setToolTip(str(error))

    def on_cancelled(self) -> None:
        self.run_button.setEnabled(True)
        self.trust_panel.clear()
        super().on_cancelled()

    def _fill_top(self, top, chosen: int, chosen_probability: float | None = None) -> None:
        self.top_list.clear()
        listed = False
        for index, name, prob in top:
            item = QListWidgetItem(f"{name}  —  {format_probability(prob)}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(f"class {index}: probability {prob:.4f} on the explained input")
            self.top_list.addItem(item)
            if index == chosen:
                item.setSelected(True)
                self.top_list.setCurrentItem(item)
                listed = True
        if not listed and chosen < len(self._class_names):
            extra = f"  —  {format_probability(chosen_probability)}" if chosen_probability is not None else ""
            item = QListWidgetItem(f"{self._class_names[chosen]}{extra}  (chosen)")
            item.setData(Qt.ItemDataRole.UserRole, chosen)
            self.top_list.addItem(item)
            self.top_list.setCurrentItem(item)

    # -- slots ----------------------------------------------------------------------------------
    @Slot()
    def _on_run_clicked(self) -> None:
        self.run()

    @Slot(int)
    def _on_choice_activated(self, _index: int) -> None:
        """The user picked another input, method or layer: once something is shown, show it anew
        (a running explanation of the same tab is cancelled by the runner)."""
        if self.result is not None and self._loaded is not None and self._image_path:
            self.run()

    @Slot(QListWidgetItem)
    def _on_top_clicked(self, item: QListWidgetItem) -> None:
        self._class_index = int(item.data(Qt.ItemDataRole.UserRole))
        self.class_edit.clear()
        self.run()

    @Slot(int)
    def _reblend(self, _value: int | None = None, keep_view: bool = True) -> None:
        alpha = self.opacity.value() / 100.0
        self.opacity_label.setText(f"{self.opacity.value()} %")
        if self._shown is None or self._heatmap is None:
            return
        from engine.inspect.cam import overlay  # noqa: PLC0415

        self.overlay_view.set_image(overlay(self._shown, self._heatmap, alpha=alpha), keep_view=keep_view)

    @Slot()
    def _finer_layer(self, layer: str) -> str | None:
        """The deepest conv layer whose map is at least 7 cells across (an earlier layer than ``layer``)."""
        paths = list(self._map_sizes)
        earlier = paths[:paths.index(layer)] if layer in paths else paths
        return next((p for p in reversed(earlier) if min(self._map_sizes[p]) >= 7), None)

    def caption_text(self) -> str:
        explained, model = self.explanation, self._loaded
        if explained is None or model is None:
            return ""
        return (f"{Path(self._image_path).name} · model {getattr(model, 'label', '') or model.model.name}\n"
                f"class {explained.class_name} ({format_probability(explained.cam.score)}) · "
                f"{self.method_combo.currentText()} at {explained.cam.layer}")

    def suggested_file_name(self) -> str:
        explained = self.explanation
        class_name = explained.class_name if explained is not None else "class"
        return overlay_file_name(self._image_path or "image", self.method_combo.currentData(), class_name)

    def _on_save_clicked(self) -> None:
        start = self.context.settings.value("folders/overlays", "", str)
        suggested = os.path.join(start, self.suggested_file_name()) if start else self.suggested_file_name()
        path, _ = QFileDialog.getSaveFileName(self, "Save overlay", suggested, "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.save_overlay(path)
            self.context.settings.set_value("folders/overlays", os.path.dirname(path))
            self.status.setText(f"Saved {path}")
