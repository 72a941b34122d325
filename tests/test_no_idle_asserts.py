"""A test line that compares without asserting checks nothing: none may exist in tests/."""

import ast
from pathlib import Path


def test_no_comparison_is_left_unasserted():
    idle = []
    for path in Path(__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Compare, ast.BoolOp)):
                idle.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not idle, "comparisons whose result is thrown away:\n" + "\n".join(idle)
