"""Where ConvScope reads bundled resources and keeps per-user data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "ConvScope"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (inside a PyInstaller bundle: next to the executable's data)."""
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root:
        return Path(bundle_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def user_data_dir() -> Path:
    """Per-user data folder: converted models, feature caches, logs.

    ``CONVSCOPE_HOME`` overrides it (tests point it at a temporary folder). Otherwise the
    platform's convention: ``%LOCALAPPDATA%\\ConvScope``, ``~/Library/Application Support/ConvScope``,
    ``$XDG_DATA_HOME/convscope`` (default ``~/.local/share/convscope``).
    """
    override = os.environ.get("CONVSCOPE_HOME")
    if override:
        path = Path(override)
    elif sys.platform.startswith("win"):
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP_NAME
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / APP_NAME
    else:
        path = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "convscope"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_cache_dir() -> Path:
    path = user_data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def features_cache_dir() -> Path:
    path = user_data_dir() / "features"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_runs_dir() -> Path:
    path = user_data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
