"""The house rules that keep the package layered: import-linter's contracts from pyproject.toml
(dataset -> separator -> metrics -> runs -> reports, no upward import, no cycle between rooms),
no private name imported across packages, and no module grown past ~400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "demixbench"
MAX_LINES = 400


def test_import_linter_contracts_are_kept():
    pytest.importorskip("importlinter")
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command;"
                          " lint_imports_command()", "--config", str(ROOT / "pyproject.toml")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Layers follow the flow KEPT" in out.stdout


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_no_private_name_crosses_a_package():
    crossing = []
    for path in PACKAGE.rglob("*.py"):
        package = path.parent
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            here = package
            for _ in range(node.level - 1):
                here = here.parent
            target = here.joinpath(*(node.module or "").split("."))
            same = target == package or target.parent == package and target.name != "__init__"
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and not same:
                    crossing.append(f"{path.relative_to(ROOT)}: {alias.name} from {node.module}")
    assert not crossing, crossing
