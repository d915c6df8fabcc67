"""Import TensorFlow lazily and quietly.

``import engine`` never loads TensorFlow; functions that need it call :func:`tf` / :func:`keras`.
TensorFlow's start-up chatter (oneDNN notices, CUDA probes on machines without a GPU, absl
warnings) is silenced unless ``CONVSCOPE_VERBOSE=1``.
"""

from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()
_tf = None


def _silence_native_logs() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_with_stderr_muted():
    """Import TensorFlow with file descriptor 2 redirected: some notices are printed by C++
    before the log level is read, so the environment variable alone does not hide them."""
    stderr_fd = None
    devnull = None
    try:
        stderr_fd = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:  # no usable fd 2 (windowed build): nothing to mute
        stderr_fd = None
    try:
        import tensorflow as tf_module  # noqa: PLC0415
        tf_module.config.list_physical_devices("GPU")  # triggers the CUDA probe while muted
    finally:
        if stderr_fd is not None:
            os.dup2(stderr_fd, 2)
            os.close(stderr_fd)
        if devnull is not None:
            os.close(devnull)
    return tf_module


def tf():
    """Return the ``tensorflow`` module, importing it on first use."""
    global _tf
    if _tf is not None:
        return _tf
    with _lock:
        if _tf is None:
            verbose = os.environ.get("CONVSCOPE_VERBOSE") == "1"
            if verbose:
                import tensorflow as tf_module  # noqa: PLC0415
            else:
                _silence_native_logs()
                tf_module = _import_with_stderr_muted()
                tf_module.get_logger().setLevel("ERROR")
                try:
                    import absl.logging  # noqa: PLC0415

                    absl.logging.set_verbosity(absl.logging.ERROR)
                except ImportError:
                    pass
            _tf = tf_module
    return _tf


def keras():
    """Return the ``keras`` (3.x) module, importing TensorFlow first."""
    tf()
    import keras as keras_module  # noqa: PLC0415

    return keras_module


def is_loaded() -> bool:
    return "tensorflow" in sys.modules
