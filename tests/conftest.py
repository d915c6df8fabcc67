"""Shared test fixtures: every test gets its own ConvScope data folder and quiet TensorFlow."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path_factory, monkeypatch):
    """Tests never touch the developer's own caches, settings or runs."""
    home = tmp_path_factory.mktemp("convscope_home")
    monkeypatch.setenv("CONVSCOPE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """EfficientNet-Lite0 converted once for the session (in its own cache folder): (.keras, no-top) paths."""
    from engine.bases import efficientnet_lite

    home = tmp_path_factory.mktemp("converted_home")
    old = os.environ.get("CONVSCOPE_HOME")
    os.environ["CONVSCOPE_HOME"] = str(home)
    try:
        return efficientnet_lite.ensure_converted()
    finally:
        if old is None:
            os.environ.pop("CONVSCOPE_HOME", None)
        else:
            os.environ["CONVSCOPE_HOME"] = old


@pytest.fixture()
def cached(converted, isolated_user_data):
    """This test's cache folder holding the session's converted files (no reconversion)."""
    from engine.paths import models_cache_dir

    for path in converted:
        os.symlink(path, models_cache_dir() / path.name)
    return models_cache_dir()
