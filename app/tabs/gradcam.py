"""Grad-CAM tab: where in the image the model found the evidence for a class (Chollet 5.4.3).

Image + model + class (the model's top-k prediction, or any class by name or index) + method
(Grad-CAM, Grad-CAM++, Score-CAM, saliency) + target layer (the engine's default unless chosen).
The heatmap comes from ``engine.inspect.cam.compute_cam`` in the job runner; the overlay is
re-blended on the GUI thread when the opacity slider moves (``engine.inspect.cam.overlay`` is cheap).

One input for everything the tab shows (:func:`explained_input`): the prediction list and the map
are computed on the *same* array, so the class probability in the result panel is the one listed.
That input is the whole photo, so the heatmap covers everything the user sees:

- ImageNet models: the whole photo with its aspect ratio kept, shorter side = the model's input size
  (e.g. 451×300 → 337×224), the model traced at that size (fully convolutional bases with a global
  pooling head can). A model that cannot run at another size gets the plain S×S resize.
  The ImageNet evaluation protocol (the 224×224 centre crop that ``convscope predict`` and the
  Evaluation tab use) sees less of the photo and can rank the classes differently; the panel shows
  its top class next to ours so the two numbers are never read as a contradiction.
- Models trained by ConvScope: the plain S×S resize of the whole photo, exactly as training and
  ``convscope predict`` fed them.

The panel names the input size; the heatmap (computed at the feature map's resolution of that
input) is resized onto the full photo for the overlay. The "Input" choice "as convscope predict"
explains exactly the array ``convscope predict`` and the Evaluation tab classify instead (for ImageNet
models the centre crop, drawn over that crop), so the two can be compared on the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
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

from app.tabs.inspection import InspectionTab
from app.widgets.image_view import ImageView
from app.widgets.model_source import model_input_size, read_image

INPUT_LABELS = (("Whole photo", "whole"), ("As convscope predict", "predict"))
METHOD_LABELS = (("Grad-CAM", "gradcam"), ("Grad-CAM++", "gradcam++"), ("Score-CAM", "scorecam"),
                 ("Saliency (gradients)", "saliency"))
TOP_K = 5


def resolve_class(text: str, names: list[str], imagenet: bool) -> int:
    """A class typed by the user (name or index) → index; InvalidSetting naming the choices."""
    from engine.errors import InvalidSetting  # noqa: PLC0415

    text = text.strip()
    if imagenet:
        from engine.imagenet import class_index  # noqa: PLC0415

        return class_index(text)
    if text.isdigit() and 0 <= int(text) < len(names):
        return int(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    raise InvalidSetting(f"unknown class '{text}'",
                         "choose one of: " + ", ".join(f"{i} {n}" for i, n in enumerate(names[:20])))


def explained_input(loaded, image: np.ndarray) -> tuple[np.ndarray, str]:
    """The array the tab predicts on and explains (see the module docstring), and a description.

    Runs in the job (it may trace the model at a new size)."""
    from engine.inspect.layers import build_tap_model, model_cache  # noqa: PLC0415
    from engine.predict import default_mode, prepare_image  # noqa: PLC0415

    size = loaded.input_size or model_input_size(loaded.model)
    height, width = image.shape[:2]
    if default_mode(loaded) == "crop" and (height, width) != (size, size):
        from PIL import Image  # noqa: PLC0415

        scale = size / min(height, width)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        native = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR), np.uint8)
        try:
            if _fixed_size(loaded.model) not in (None, (new_h, new_w)):
                model_cache.get(loaded.model, ("gradcam-tab", native.shape),
                                lambda: build_tap_model(loaded.model, [], input_shape=native.shape))
            return native, (f"the whole photo at {new_w}×{new_h} (aspect kept, shorter side {size})")
        except Exception:  # noqa: BLE001 - e.g. a Flatten head: it only runs at its own size
            pass
    prepared = prepare_image(image, size, "resize")
    return prepared, f"the whole photo resized to {size}×{size}" + (
        " (as in training)" if loaded.kind != "imagenet" else " (this model only runs at its own size)")


def _fixed_size(model) -> tuple[int, int] | None:
    try:
        shape = tuple(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError):
        return None
    return None if shape[1] is None or shape[2] is None else (int(shape[1]), int(shape[2]))


def top_k_at(loaded, array: np.ndarray, k: int = TOP_K) -> list[tuple[int, str, float]]:
    """The model's top-k (index, name, probability) on ``array`` at its own size (in the job)."""
    from engine.inspect.layers import build_tap_model, model_cache  # noqa: PLC0415
    from engine.predict import class_names_for, predict_arrays, to_probabilities  # noqa: PLC0415

    batch = np.asarray(array, np.float32)[None]
    if _fixed_size(loaded.model) in (None, tuple(array.shape[:2])):
        return predict_arrays(loaded, batch, top_k=k)[0]
    tap = model_cache.get(loaded.model, ("gradcam-tab", array.shape),
                          lambda: build_tap_model(loaded.model, [], input_shape=array.shape))
    outputs = tap(batch, training=False)
    outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    probs = to_probabilities(np.asarray(outputs))[0]
    names = class_names_for(loaded, probs.shape[0])
    order = np.argsort(-probs, kind="stable")[: max(1, min(int(k), probs.shape[0]))]
    return [(int(i), names[i], float(probs[i])) for i in order]


class GradCamTab(InspectionTab):
    title = "Grad-CAM"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._class_names: list[str] = []
        self._pixels: np.ndarray | None = None  # the photo as read
        self._shown: np.ndarray | None = None  # what the heatmap is drawn over: the photo or the model's crop
        self._heatmap: np.ndarray | None = None
        self._class_index: int | None = None  # requested; None = the predicted class
        self._default_layer: str | None = None
        self.result = None  # the last engine CamResult
        self.top: list[tuple[int, str, float]] = []
        self.input_text = ""  # which input the prediction and the map were computed on

        self.input_combo = QComboBox(self)
        for label, key in INPUT_LABELS:
            self.input_combo.addItem(label, key)
        self.input_combo.setToolTip("Whole photo: the heatmap covers everything you see. As convscope predict: "
                                    "the exact input the CLI and the Evaluation tab classify (for ImageNet "
                                    "models the centre crop)")
        self.method_combo = QComboBox(self)
        for label, key in METHOD_LABELS:
            self.method_combo.addItem(label, key)
        self.layer_combo = QComboBox(self)
        self.layer_combo.setMinimumContentsLength(22)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setToolTip("The feature map to explain (Grad-CAM looks at the last conv layer by default)")
        self.class_edit = QLineEdit(self)
        self.class_edit.setPlaceholderText("any class: name or index")
        self.class_edit.setToolTip("Leave empty for the predicted class; or pick one in the list on the left")
        self.run_button = QPushButton("Explain", self)
        self.run_button.setDefault(True)
        self.top_list = QListWidget(self)
        self.top_list.setToolTip("The model's prediction; click a class to see its evidence")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.opacity_label = QLabel("40 %", self)
        self.save_button = QPushButton("Save overlay as PNG…", self)
        self.save_button.setEnabled(False)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.original_view = ImageView(self, placeholder="Original")
        self.overlay_view = ImageView(self, placeholder="Overlay")
        self.status.setText("Pick a model and an image (or drop an image file here).")
        for widget in (self.run_button, self.class_edit, self.layer_combo, self.top_list):
            self.gate.add(widget)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Input:", self))
        controls.addWidget(self.input_combo)
        controls.addWidget(QLabel("Method:", self))
        controls.addWidget(self.method_combo)
        controls.addWidget(QLabel("Layer:", self))
        controls.addWidget(self.layer_combo, 1)
        controls.addWidget(QLabel("Class:", self))
        controls.addWidget(self.class_edit, 1)
        controls.addWidget(self.run_button)
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
        side_layout.addWidget(self.save_button)
        side_layout.addWidget(self.info, 2)
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
        for combo in (self.input_combo, self.method_combo, self.layer_combo):
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

    @Slot(str)
    def select_layer(self, path: str) -> bool:
        index = self.layer_combo.findData(path)
        if index < 0:
            return False
        self.layer_combo.setCurrentIndex(index)
        return True

    def set_method(self, key: str) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(key))

    @Slot()
    def run(self) -> None:
        """Predict and compute the map for the current image, class, method and layer."""
        if self._loaded is None or not self._image_path:
            self.status.setText("Pick a model and an image first.")
            return
        loaded, path, pixels = self._loaded, self._image_path, self._pixels
        class_index, typed = self._class_index, self.class_edit.text().strip()
        names, imagenet = list(self._class_names), loaded.kind == "imagenet"
        method, layer = self.method_combo.currentData(), self.layer_combo.currentData()
        as_predict = self.input_combo.currentData() == "predict"

        def job(emit, cancel):
            from engine.events import Status  # noqa: PLC0415
            from engine.inspect.cam import compute_cam  # noqa: PLC0415
            from engine.predict import default_mode, predict_arrays, prepare_image  # noqa: PLC0415

            image = pixels if pixels is not None else read_image(path)
            emit(Status(f"Predicting {Path(path).name}"))
            size, mode = loaded.input_size or model_input_size(loaded.model), default_mode(loaded)
            if as_predict:
                array = shown = prepare_image(image, size, mode)
                described = (f"the {size}×{size} centre crop, as convscope predict" if mode == "crop"
                             else f"the whole photo resized to {size}×{size}, as convscope predict")
            else:
                (array, described), shown = explained_input(loaded, image), image
            top = top_k_at(loaded, array)
            crop_top = None
            if mode == "crop" and not as_predict:  # the ImageNet protocol's answer, for comparison
                crop_top = predict_arrays(loaded, prepare_image(image, size, "crop")[None], top_k=1)[0][0]
            cancel.raise_if_cancelled()
            wanted = resolve_class(typed, names, imagenet) if typed else class_index
            if wanted is None:
                wanted = top[0][0]
            emit(Status(f"{method} for class {wanted}"))
            # resize=False: the map of exactly the array the prediction list came from
            result = compute_cam(loaded.model, array, class_index=wanted, layer=layer, method=method, resize=False)
            return {"image": image, "shown": shown, "top": top, "result": result, "model": loaded.model, "path": path,
                    "input_shape": tuple(array.shape[:2]), "input_text": described, "crop_top": crop_top,
                    "model_size": size}

        self.run_button.setEnabled(False)
        self.status.setText("Computing…")
        self.start_job("Grad-CAM", job)

    def overlay_image(self) -> np.ndarray | None:
        return self.overlay_view.displayed_image()

    def save_overlay(self, path: str) -> None:
        """Write the overlay as it is shown (current opacity) to ``path`` as a PNG."""
        from PIL import Image  # noqa: PLC0415

        from engine.atomic import save_with  # noqa: PLC0415

        image = self.overlay_view.image()
        if image is None:
            return
        save_with(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"), suffix=".png")

    # -- model ----------------------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        self._loaded = loaded
        self._heatmap = None
        self.result = None
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
        for info in list_layers(loaded.model):
            if info.is_spatial and not info.is_model:
                self.layer_combo.addItem(info.path, info.path)
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
            self.run()

    # -- job outcome ----------------------------------------------------------------------------
    def on_done(self, outcome: dict) -> None:
        self.run_button.setEnabled(True)
        if self._loaded is None or outcome["model"] is not self._loaded.model or outcome["path"] != self._image_path:
            return
        self._pixels = outcome["image"]
        self._shown = outcome["shown"]
        result = outcome["result"]
        self.result, self.top = result, outcome["top"]
        self._heatmap = result.heatmap
        self._fill_top(outcome["top"], result.class_index, result.score)
        whole_photo = self._shown is self._pixels
        self.original_view.set_image(self._shown)
        self.original_label.setText("Original" if whole_photo else "The model's input (as convscope predict)")
        self._reblend(keep_view=False)
        self.save_button.setEnabled(True)
        name = self._class_names[result.class_index] if result.class_index < len(self._class_names) else ""
        self.input_text = outcome.get("input_text", "")
        height, width = self._shown.shape[:2]
        drawn_over = f"the full {width}×{height} photo" if whole_photo else f"the model's {width}×{height} input"
        lines = [
            f"<b>{name or 'class'}</b> (#{result.class_index}): probability {result.score:.1%}",
            f"Input: {self.input_text}; the prediction list and the map both come from it.",
            f"Heatmap: {self.method_combo.currentText()} at layer {result.layer}, drawn over {drawn_over}.",
        ]
        crop = outcome.get("crop_top")
        if crop is not None:
            size = outcome["model_size"]
            lines.append(f"<i>ImageNet protocol ({size}×{size} centre crop, as convscope predict): "
                         f"{crop[1]} {crop[2]:.1%}</i>")
        self.info.setText("<br>".join(lines))
        self.status.setText(f"{Path(self._image_path).name}: evidence for '{name or result.class_index}'.")

    def on_exception(self, error: object) -> None:
        self.run_button.setEnabled(True)
        super().on_exception(error)

    def on_cancelled(self) -> None:
        self.run_button.setEnabled(True)
        super().on_cancelled()

    def _fill_top(self, top, chosen: int, chosen_probability: float | None = None) -> None:
        self.top_list.clear()
        listed = False
        for index, name, prob in top:
            item = QListWidgetItem(f"{name}  —  {prob:.1%}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(f"class {index}: probability {prob:.4f} on the explained input")
            self.top_list.addItem(item)
            if index == chosen:
                item.setSelected(True)
                self.top_list.setCurrentItem(item)
                listed = True
        if not listed and chosen < len(self._class_names):
            extra = f"  —  {chosen_probability:.1%}" if chosen_probability is not None else ""
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
    def _on_save_clicked(self) -> None:
        suggested = Path(self._image_path).stem + "_gradcam.png" if self._image_path else "gradcam.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save overlay", suggested, "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.save_overlay(path)
            self.status.setText(f"Saved {path}")
