"""Load a model to predict with or look inside, safely, from whatever the user points at.

``load_model(source, trust=False)`` accepts

- a ``.keras`` file: checked before Keras sees it (a zip archive with ``config.json``, saved by a
  Keras no newer than the installed one) and loaded with ``safe_mode=True``. A model that needs
  arbitrary code — a ``Lambda`` layer (its Python bytecode is stored in the file) or custom classes
  from modules outside Keras — is refused with :class:`UnsafeModelError` unless ``trust`` is set
  (``--trust-model`` on the command line). The configuration is inspected first, so a refused
  file never reaches Keras's deserializer.
- a run folder written by ``convscope train``: its ``best.keras``, else ``last.keras``; class names
  and image size come from its ``config.json``. Model files named in ``config.json`` must stay inside
  the run folder (no ``../`` escapes, no symlinks out).
- the registry name of a base with an ImageNet head (``efficientnet-lite0``).

Every failure the user can fix is a :class:`ModelFileError` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConvScopeError, InvalidSetting, ModelFileError, UnsafeModelError
from engine.models.archive import read_checked
from engine.models.footprint import check_config, check_footprint
from engine.tf_runtime import keras

RUN_CONFIG = "config.json"
RUN_MODEL_FILES = ("best.keras", "last.keras")
TRUST_HINT = "only if you trust whoever made the file, load it with --trust-model"
# config.json keys that may name a model or weights file inside the run folder
_FILE_KEYS = ("model", "model_file", "best", "last", "checkpoint", "best_model", "last_model")
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class LoadedModel:
    model: Any = field(repr=False)
    class_names: list[str] | None
    kind: str  # "imagenet" | "run" | "file"
    input_size: int | None
    label: str
    source: str

    @property
    def num_outputs(self) -> int:
        return int(self.model.outputs[0].shape[-1])


# --------------------------------------------------------------------------------------------------
# Entry point


def load_model(source: str | os.PathLike, trust: bool = False, *, compile: bool = False) -> LoadedModel:
    """Load ``source`` (a ``.keras`` file, a run folder or an ImageNet base name); see the module doc."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_run(path, trust, compile)
    if path.exists() or _looks_like_path(text):
        return _load_file(path, trust, compile)
    return _load_registry(text)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.lower().endswith(_MODEL_SUFFIXES + (".json",))


def _load_registry(name: str) -> LoadedModel:
    from engine.bases.registry import get_base  # noqa: PLC0415
    from engine import imagenet  # noqa: PLC0415

    try:
        spec = get_base(name)
    except InvalidSetting as error:
        raise ModelFileError(
            f"'{name}' is neither a model file, a run folder nor a known base",
            f"give a .keras file, a run folder, or a base with an ImageNet head ({error.hint})",
        ) from None
    if not spec.imagenet_head:
        raise ModelFileError(
            f"base '{name}' ({spec.label}) has no ImageNet classifier head to predict with",
            "use efficientnet-lite0, or a model trained on it (a run folder or .keras file)",
        )
    model = spec.build(include_top=True)
    return LoadedModel(model=model, class_names=imagenet.class_names(), kind="imagenet",
                       input_size=spec.input_size, label=spec.label, source=name)


# --------------------------------------------------------------------------------------------------
# .keras files


def _load_file(path: Path, trust: bool, compile: bool) -> LoadedModel:
    model = load_keras_file(path, trust=trust, compile=compile)
    size = _static_input_size(model)
    return LoadedModel(model=model, class_names=None, kind="file", input_size=size,
                       label=f"{path.name} ({model.name})", source=str(path))


def load_keras_file(path: str | os.PathLike, trust: bool = False, compile: bool = False):
    """Check and load one ``.keras`` file; returns the Keras model."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: file not found", "check the path")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder without {RUN_CONFIG}", "give a .keras file or a run folder")
    if not path.is_file():  # a named pipe would block the first read forever; a device never ends
        raise ModelFileError(f"{path}: not a regular file (a pipe, socket or device)", "give a .keras model file")
    suffix = path.suffix.lower()
    if path.name.lower().endswith(".weights.h5") or suffix in (".h5", ".hdf5"):
        _explain_h5(path)
    config, weights_bytes, keras_version = _read_archive(path)  # bounded: engine.models.archive
    try:
        problems = unsafe_parts(config if compile else _without_compile_config(config))
    except RecursionError:
        raise ModelFileError(f"{path}: refused: config.json is nested too deeply to be a Keras model",
                             "ask for the model again or train it yourself") from None
    if problems and not trust:
        raise UnsafeModelError(
            f"{path}: refused to load: the model contains {', '.join(problems)}, which can run arbitrary "
            "code when loaded",
            TRUST_HINT,
        )
    check_config(path, config)  # layer count, least declared memory: still without TensorFlow
    _check_version(path, keras_version)
    k = keras()
    from engine.data.augment import register_layers  # noqa: PLC0415

    register_layers()  # ConvScope's own layers must be registered before Keras deserializes them
    check_footprint(path, _without_compile_config(config), weights_bytes, safe_mode=not trust)
    try:
        if trust:
            return k.saving.load_model(str(path), compile=compile, safe_mode=False)
        return k.saving.load_model(str(path), compile=compile, safe_mode=True)
    except ConvScopeError:
        raise
    except Exception as error:  # noqa: BLE001 - Keras raises many types; each becomes one clear line
        message = " ".join(str(error).split())[:300]
        if "safe_mode" in message or "arbitrary code" in message:
            raise UnsafeModelError(f"{path}: refused to load: {message}", TRUST_HINT) from None
        if "Could not locate" in message or "custom" in message.lower():
            raise ModelFileError(
                f"{path}: the model needs custom classes that are not available ({message})",
                "load it from the Python code that defined those classes",
            ) from None
        raise ModelFileError(f"{path}: cannot load the model ({type(error).__name__}: {message})",
                             "the file may be damaged; save or train it again") from None


def _explain_h5(path: Path) -> None:
    """ConvScope saves and reads .keras files; say exactly what an .h5 file is and what to do."""
    try:
        import h5py  # noqa: PLC0415 - comes with TensorFlow

        with h5py.File(path, "r") as handle:
            has_config = "model_config" in handle.attrs
    except OSError:
        raise ModelFileError(f"{path}: not a readable HDF5 file (truncated or another format)",
                             "give a .keras model file") from None
    if has_config:
        raise ModelFileError(
            f"{path}: a legacy Keras 2 .h5 model; ConvScope loads the .keras format only",
            "re-save it with model.save('model.keras') in the Keras that made it",
        )
    raise ModelFileError(
        f"{path}: a weights-only file: it holds no architecture, so there is no model to load",
        "give the full .keras model (a run folder's best.keras) instead",
    )


def _read_archive(path: Path) -> tuple[dict, int, str | None]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error.strerror or error})",
                             "check the file's permissions") from None
    if head.startswith(b"\x89HDF"):
        _explain_h5(path)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            raise ModelFileError(f"{path}: damaged or truncated .keras file (incomplete zip archive)",
                                 "copy or save the model again")
        raise ModelFileError(f"{path}: not a Keras model file (a .keras file is a zip archive)",
                             "give a .keras file saved by Keras 3 (model.save('model.keras'))")
    contents = read_checked(path)
    version = contents.metadata.get("keras_version")
    return contents.config, contents.weights_bytes, version if isinstance(version, str) else None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _check_version(path: Path, saved: str | None) -> None:
    if not saved:
        return
    installed = keras().__version__
    if _version_tuple(saved)[:2] > _version_tuple(installed)[:2]:
        raise ModelFileError(
            f"{path}: saved by Keras {saved}, newer than the installed Keras {installed}",
            f"upgrade Keras to {saved} or later, or re-save the model with Keras {installed}",
        )
    if _version_tuple(saved)[:1] < (3,):
        raise ModelFileError(f"{path}: saved by Keras {saved}; ConvScope reads Keras 3 files",
                             "re-save it with Keras 3")


def _without_compile_config(config: dict) -> dict:
    return {key: value for key, value in config.items() if key != "compile_config"}


def unsafe_parts(config: Any) -> list[str]:
    """What in a Keras config needs arbitrary code: Lambda layers, Python lambdas, objects from
    modules outside Keras. Empty list when the model uses only Keras's own classes and ConvScope's
    own registered layers (``engine.data.augment.REGISTERED_LAYERS``, matched by exact registered
    name, module and class name)."""
    from engine.data.augment import REGISTERED_LAYERS  # noqa: PLC0415 - no TensorFlow

    found: list[str] = []

    def note(text: str) -> None:
        if text not in found:
            found.append(text)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            class_name = node.get("class_name")
            module = node.get("module")
            registered = node.get("registered_name")
            if class_name == "Lambda":
                note("a Lambda layer")
            elif class_name in ("__lambda__", "__function__"):
                note("serialized Python code")
            elif isinstance(registered, str) and REGISTERED_LAYERS.get(registered) == (module, class_name):
                pass  # ConvScope's own layer
            elif isinstance(module, str) and module != "keras" and not module.startswith("keras."):
                note(f"custom object '{class_name}' from module '{module}'")
            elif isinstance(node.get("registered_name"), str) and ">" in node["registered_name"]:
                note(f"custom object '{node['registered_name']}'")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def _static_input_size(model) -> int | None:
    from engine.inspect.layers import fixed_image_size  # noqa: PLC0415

    size = fixed_image_size(model)
    return size[0] if size is not None and size[0] == size[1] else None


# --------------------------------------------------------------------------------------------------
# Run folders


def _inside(folder: Path, target: Path) -> bool:
    try:
        target.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _check_config_paths(run_dir: Path, config_path: Path, config: dict) -> None:
    for key, value in config.items():
        if not isinstance(value, str):
            continue
        names_model = key in _FILE_KEYS or value.lower().endswith(_MODEL_SUFFIXES)
        if not names_model:
            continue
        candidate = Path(value)
        if candidate.is_absolute() or ".." in candidate.parts or not _inside(run_dir, run_dir / candidate):
            raise ModelFileError(
                f"{config_path}: '{key}' points outside the run folder ({value})",
                "a run folder's model files must stay inside it; fix config.json or train again",
            )


def _load_run(run_dir: Path, trust: bool, compile: bool) -> LoadedModel:
    config_path = run_dir / RUN_CONFIG
    if not config_path.is_file():
        raise ModelFileError(f"{run_dir}: not a ConvScope run folder (no {RUN_CONFIG})",
                             "give a folder written by `convscope train`, or a .keras file")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{config_path}: unreadable ({error})", "the run folder is damaged; train again") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{config_path}: not a JSON object", "the run folder is damaged; train again")
    _check_config_paths(run_dir, config_path, config)
    classes = config.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise ModelFileError(f"{config_path}: 'classes' must list at least two class names",
                             "the run folder is damaged; train again")
    image_size = config.get("image_size")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ModelFileError(f"{config_path}: 'image_size' must be a positive integer", "fix config.json")

    named = next((config[k] for k in _FILE_KEYS if isinstance(config.get(k), str)), None)
    candidates = [run_dir / named] if named else [run_dir / name for name in RUN_MODEL_FILES]
    model_path = next((p for p in candidates if p.is_file()), None)
    if model_path is None:
        raise ModelFileError(f"{run_dir}: the run folder has no saved model (best.keras or last.keras)",
                             "the run may have stopped before its first epoch ended; train again")
    if not _inside(run_dir, model_path):
        raise ModelFileError(f"{model_path}: links outside the run folder", "replace it with the real file")
    model = load_keras_file(model_path, trust=trust, compile=compile)
    outputs = int(model.outputs[0].shape[-1])
    expected = 1 if len(classes) == 2 else len(classes)
    if outputs != expected and not (len(classes) == 2 and outputs == 2):
        raise ModelFileError(
            f"{model_path}: the model has {outputs} outputs but {config_path.name} lists {len(classes)} classes",
            "the run folder is inconsistent; train again",
        )
    size = _static_input_size(model) or image_size
    label = f"{run_dir.name} ({model_path.name})"
    return LoadedModel(model=model, class_names=list(classes), kind="run", input_size=size,
                       label=label, source=str(run_dir))
