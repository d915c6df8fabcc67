"""The engine/GUI split and lazy TensorFlow import, enforced (napari-style contract)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_ENGINE = ("PySide6", "shiboken6", "pyqtgraph", "app", "PyQt5", "PyQt6")


def _imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "engine").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_module_never_imports_qt_or_app(path):
    assert not (_imported_top_level_names(path) & set(FORBIDDEN_IN_ENGINE))


def _modules_loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_importing_engine_loads_no_tensorflow():
    loaded = _modules_loaded_after("import engine, engine.events, engine.errors, engine.paths, engine.atomic")
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_cli_help_and_base_listing_load_no_tensorflow():
    # `convscope --help` and `convscope bases` must answer instantly, before TF is needed.
    loaded = _modules_loaded_after(
        "from engine.cli import build_parser\nbuild_parser()\n"
        "from engine.bases.registry import all_bases\nall_bases()"
    )
    assert "tensorflow" not in loaded
    assert not {"PySide6", "pyqtgraph"} & loaded
