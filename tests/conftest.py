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
