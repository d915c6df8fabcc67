"""One route for every explanation: ``explain(loaded, image, request) -> Explanation``.

The Grad-CAM tab and ``convscope gradcam`` both call :func:`explain`, so the same photo, model,
class, method, target and input give the same heatmap in both. The input protocol
(``ExplainRequest.input``):

- ``"whole"`` (the default): the whole photo, so the heatmap covers everything the user sees.
  ImageNet models get it with its aspect kept, shorter side = the model's input size (451×300 →
  337×224), the model traced at that size (fully convolutional bases with a global pooling head can);
  a model that cannot run at another size, and every model trained by ConvScope, gets the plain S×S
  resize it was trained on.
- ``"predict"``: exactly the array ``convscope predict`` and the Evaluation tab classify (for ImageNet
  models the S×S centre crop); the heatmap is drawn over that array.
- ``"resize"``: the whole photo squashed to S×S, the map drawn back over the full photo.

The top-k list and the map come from the same array, so the class probability shown is the one
listed. For ImageNet models not explained on the centre crop, ``crop_top`` is the ImageNet protocol's
answer, shown beside ours so the two numbers are never read as a contradiction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import InvalidSetting, check_at_least
from engine.inspect.cam import METHODS, TARGETS, CamResult, class_count, compute_cam, resize_heatmap
from engine.inspect.layers import build_tap_model, fixed_image_size, model_cache

INPUTS = ("whole", "predict", "resize")
TOP_K = 5


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain. ``class_`` is an index, a class name, or None for the predicted class."""

    method: str = "gradcam"
    class_: int | str | None = None
    layer: str | None = None
    input: str = "whole"
    target: str = "logit"
    output_index: int = 0
    explain_input: int = 0  # for a model with several image inputs: the one explained
    top_k: int = TOP_K

    def validate(self) -> None:
        if self.method not in METHODS:
            raise InvalidSetting(f"unknown method '{self.method}'", "choose one of: " + ", ".join(METHODS))
        if self.input not in INPUTS:
            raise InvalidSetting(f"unknown input '{self.input}'", "choose one of: " + ", ".join(INPUTS))
        if self.target not in TARGETS:
            raise InvalidSetting(f"unknown target '{self.target}'", "choose one of: " + ", ".join(TARGETS))
        check_at_least("top-k", self.top_k)


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray = field(repr=False)  # float32 (H, W) in 0..1 at the size of ``shown``
    shown: np.ndarray = field(repr=False)  # uint8 RGB the heatmap is drawn over (the photo, or the model's crop)
    input_array: np.ndarray = field(repr=False)  # what the model saw (raw RGB 0..255)
    input_text: str  # a sentence naming that input
    cam: CamResult
    class_name: str
    top: list = field(default_factory=list)  # [(index, name, probability)] on input_array
    crop_top: tuple | None = None  # the ImageNet centre-crop protocol's top class, when not explained on it
    input_mode: str = "whole"
    other_inputs: tuple = field(default=(), repr=False)  # a multi-input model's other inputs, (1, ...) each

    @property
    def whole_photo(self) -> bool:
        return self.input_mode != "predict"

    def to_dict(self) -> dict:
        return {**self.cam.to_dict(), "heatmap_shape": list(self.heatmap.shape), "class_name": self.class_name,
                "input": self.input_mode, "input_text": self.input_text, "explain_input": self.cam.explain_input,
                "input_shape": list(self.input_array.shape[:2]),
                "top": [{"index": i, "name": n, "probability": p} for i, n, p in self.top],
                "crop_top": None if self.crop_top is None else {
                    "index": self.crop_top[0], "name": self.crop_top[1], "probability": self.crop_top[2]}}


# ----------------------------------------------------------------------------------------------
# classes


def resolve_class(loaded, spec: int | str | None, n_classes: int) -> int | None:
    """A class given by index or name (this model's class names, or ImageNet's for a 1000-class
    model) → index; None stays None (the predicted class). InvalidSetting names the choices."""
    if spec is None or isinstance(spec, (int, np.integer)):
        return None if spec is None else int(spec)
    text = str(spec).strip()
    if text.isdigit():
        return int(text)
    names = loaded.class_names or []
    lowered = [name.lower() for name in names]
    if text.lower() in lowered and len(names) == n_classes:
        return lowered.index(text.lower())
    if loaded.kind == "imagenet" or n_classes == 1000:
        from engine import imagenet  # noqa: PLC0415

        return imagenet.class_index(text)
    if names:
        raise InvalidSetting(f"class '{text}' is not one of this model's classes",
                             "choose one of: " + ", ".join(f"{i} {n}" for i, n in enumerate(names[:20])))
    raise InvalidSetting(f"class '{text}': this model has no class names",
                         f"give a class index between 0 and {n_classes - 1}")


def class_names_of(loaded, output_index: int = 0) -> list[str]:
    from engine.predict import class_names_for  # noqa: PLC0415

    return class_names_for(loaded, class_count(loaded.model, output_index))


# ----------------------------------------------------------------------------------------------
# inputs


def input_size(loaded, input_index: int = 0) -> int:
    """The model's square input size (its run's, else its input shape's, else 224)."""
    if loaded.input_size and input_index == 0:
        return int(loaded.input_size)
    shape = fixed_image_size(loaded.model, input_index)
    return shape[0] if shape else 224


def _runs_at(model, shape) -> bool:
    """Whether ``model`` can be traced at ``shape`` (H, W, C); the trace is cached for the passes."""
    if fixed_image_size(model) in (None, tuple(shape[:2])):
        return True
    try:
        model_cache.get(model, ("explain-tap", tuple(shape)), lambda: build_tap_model(model, [], input_shape=shape))
        return True
    except Exception:  # noqa: BLE001 - e.g. a Flatten head: it only runs at its own size
        return False


def model_input(loaded, image: np.ndarray, mode: str, input_index: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(the array the model sees, the image the map is drawn over, a description) for ``mode``."""
    from engine.predict import default_mode, prepare_image  # noqa: PLC0415

    size, protocol = input_size(loaded, input_index), default_mode(loaded)
    if len(loaded.model.inputs) > 1:  # several inputs: each gets its own square input, as in training
        protocol = "resize"
    if mode == "predict":
        array = prepare_image(image, size, protocol)
        return array, array, (f"the {size}×{size} centre crop, as convscope predict" if protocol == "crop"
                              else f"the whole photo resized to {size}×{size}, as convscope predict")
    height, width = image.shape[:2]
    if mode == "whole" and protocol == "crop" and (height, width) != (size, size):
        from PIL import Image  # noqa: PLC0415

        scale = size / min(height, width)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        native = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR), np.uint8)
        if _runs_at(loaded.model, native.shape):
            return native, image, f"the whole photo at {new_w}×{new_h} (aspect kept, shorter side {size})"
    why = " (as in training)" if loaded.kind != "imagenet" else (
        "" if mode == "resize" else " (this model only runs at its own size)")
    return prepare_image(image, size, "resize"), image, f"the whole photo resized to {size}×{size}{why}"


def top_k_at(loaded, array: np.ndarray, k: int = TOP_K, output_index: int = 0, explain_input: int = 0,
             others: tuple = ()) -> list[tuple[int, str, float]]:
    """The model's top-k (index, name, probability) on ``array`` at its own size (``others``: the
    (1, ...) batches of a multi-input model's other inputs)."""
    from engine.predict import class_names_for, to_probabilities  # noqa: PLC0415

    batch = np.asarray(array, np.float32)[None]
    if others:
        outputs = loaded.model(list(others[:explain_input]) + [batch] + list(others[explain_input:]), training=False)
    elif fixed_image_size(loaded.model) in (None, tuple(array.shape[:2])):
        outputs = loaded.model(batch, training=False)
    else:
        tap = model_cache.get(loaded.model, ("explain-tap", tuple(array.shape)),
                              lambda: build_tap_model(loaded.model, [], input_shape=array.shape))
        outputs = tap(batch, training=False)
    outputs = outputs[output_index] if isinstance(outputs, (list, tuple)) else outputs
    probs = to_probabilities(np.asarray(outputs))[0]
    names = class_names_for(loaded, probs.shape[0])
    order = np.argsort(-probs, kind="stable")[: max(1, min(int(k), probs.shape[0]))]
    return [(int(i), names[i], float(probs[i])) for i in order]


# ----------------------------------------------------------------------------------------------
# the route


def explain(loaded, image: np.ndarray, request: ExplainRequest, cancel=None, others: dict | None = None) -> Explanation:
    """Explain ``image`` (raw RGB uint8 (H, W, 3), as read) with ``loaded`` (a LoadedModel).

    A model with several inputs: ``image`` feeds input ``request.explain_input`` and ``others`` maps
    each other input's index to its image, held fixed (each resized to its input's size)."""
    from engine.inspect.layers import image_batch, input_names, input_shapes  # noqa: PLC0415
    from engine.predict import default_mode, predict_arrays, prepare_image  # noqa: PLC0415

    request.validate()
    n_inputs, explained_at = len(input_shapes(loaded.model)), request.explain_input
    if not 0 <= explained_at < n_inputs:
        raise InvalidSetting(f"input {explained_at} is out of range: the model has {n_inputs} input(s)",
                             f"choose an input between 0 and {n_inputs - 1}")
    others = dict(others or {})
    other_indices = [i for i in range(n_inputs) if i != explained_at]
    missing = [i for i in other_indices if i not in others]
    if missing:
        names = input_names(loaded.model)
        raise InvalidSetting(f"the model has {n_inputs} inputs and no image for input "
                             + ", ".join(f"'{names[i]}'" for i in missing), "give one with --image NAME=PATH")
    rest_images = [others[i] for i in other_indices]
    rest = tuple(image_batch(loaded.model, others[i], i)[0] for i in other_indices)
    array, shown, described = model_input(loaded, np.asarray(image), request.input, explained_at)
    top = top_k_at(loaded, array, request.top_k, request.output_index, explained_at, rest)
    crop_top = None
    if default_mode(loaded) == "crop" and request.input != "predict" and request.output_index == 0 and n_inputs == 1:
        size = input_size(loaded)
        crop_top = predict_arrays(loaded, prepare_image(image, size, "crop")[None], top_k=1)[0][0]
    if cancel is not None:
        cancel.raise_if_cancelled()
    names = class_names_of(loaded, request.output_index)
    wanted = resolve_class(loaded, request.class_, len(names))
    if wanted is None:
        wanted = top[0][0]
    cam = compute_cam(loaded.model, array, class_index=wanted, layer=request.layer, method=request.method,
                      output_index=request.output_index, resize=False, target=request.target,
                      explain_input=explained_at, others=rest_images)
    return Explanation(
        heatmap=resize_heatmap(cam.heatmap, shown.shape[:2]), shown=shown, input_array=array,
        input_text=described, cam=cam, class_name=names[cam.class_index], top=top, crop_top=crop_top,
        input_mode=request.input, other_inputs=rest,
    )


# ----------------------------------------------------------------------------------------------
# how far to trust it


@dataclass(frozen=True)
class Trust:
    """The faithfulness scores of an explanation and, when asked, its sanity check."""

    faithfulness: object  # engine.inspect.faithfulness.Faithfulness
    sanity: object | None = None  # engine.inspect.sanity.SanityCheck

    def lines(self) -> list[str]:
        f = self.faithfulness
        e = f.explained
        lines = [f.verdict(),
                 f"deletion AUC {e.deletion.auc:.3f} (lower is better), insertion AUC {e.insertion.auc:.3f} (higher)"]
        if e.road_morf is not None:
            lines.append(f"ROAD: most relevant first {e.road_morf.auc:.3f} (lower is better), least relevant "
                         f"first {e.road_lerf.auc:.3f} (higher)")
        for name, scores in f.baselines.items():
            label = {"random": "random map", "blob": "centred blob"}.get(name, name)
            lines.append(f"{label}: deletion {scores.deletion.auc:.3f}, insertion {scores.insertion.auc:.3f}")
        if self.sanity is not None:
            lines.append(self.sanity.summary())
        return lines

    def to_dict(self) -> dict:
        return {**self.faithfulness.to_dict(), "sanity": None if self.sanity is None else self.sanity.to_dict()}


def assess(loaded, explanation: Explanation, config=None, sanity: bool = True, cancel=None,
           timings: dict | None = None) -> Trust:
    """Faithfulness curves (and baselines) of ``explanation``'s map on the array the model explained,
    and the cascading-randomisation sanity check of its method (``timings``: phase → seconds is added
    to it, the benchmark's profile)."""
    from engine.inspect.faithfulness import faithfulness  # noqa: PLC0415
    from engine.inspect.sanity import sanity_check  # noqa: PLC0415

    cam = explanation.cam
    scores = faithfulness(loaded.model, explanation.input_array, cam.heatmap, cam.class_index, config,
                          output_index=cam.output_index, low_res=cam.raw.shape if cam.raw is not None else None,
                          cancel=cancel, explain_input=cam.explain_input, others=explanation.other_inputs,
                          timings=timings)
    check = None
    if sanity:
        check = sanity_check(loaded.model, explanation.input_array, cam.class_index, cam.method,
                             None if cam.layer == "input" else cam.layer, cam.output_index, cam.target,
                             original=cam.raw, cancel=cancel, explain_input=cam.explain_input,
                             others=[o[0] for o in explanation.other_inputs], timings=timings)
    return Trust(scores, check)
