"""One way to do one thing in the agent (issue 10: duplicated helpers drifted apart).

Static checks over the agent's source (the server, ``logpulse_agent/server``, has its own
owners and is left out): the config etag and the ``{}`` test each exist once, no helper name is
defined twice, and no attribute is set that nothing reads.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "logpulse_agent"


def agent_modules() -> dict[str, ast.Module]:
    """Every agent module's syntax tree, by path relative to the package."""
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "server" not in path.relative_to(PACKAGE).parts
    }


def functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def where(predicate: type[ast.AST], test: object) -> list[str]:
    """``module:function`` of every node of type ``predicate`` for which ``test`` holds."""
    found = []
    for name, tree in agent_modules().items():
        for function in functions(tree):
            for node in ast.walk(function):
                if isinstance(node, predicate) and test(node):  # type: ignore[operator]
                    found.append(f"{name}:{function.name}")
    return found


def test_the_config_etag_is_computed_in_one_place() -> None:
    """`"sha256:" + …` exists once: protocol.config_etag (the store and the response check
    each had their own)."""

    def builds_etag(node: ast.BinOp) -> bool:
        return isinstance(node.left, ast.Constant) and node.left.value == "sha256:"

    assert where(ast.BinOp, builds_etag) == ["controlplane/protocol.py:config_etag"]


def test_the_empty_config_is_recognised_in_one_place() -> None:
    """The `{}` body test exists once: protocol.is_empty_config (ConfigUpdate.is_empty and
    vector.options had one each)."""

    def compares_with_empty(node: ast.Compare) -> bool:
        operands = [node.left, *node.comparators]
        return any(isinstance(o, ast.Constant) and o.value == b"{}" for o in operands)

    assert where(ast.Compare, compares_with_empty) == ["controlplane/protocol.py:is_empty_config"]


def test_no_module_level_helper_is_defined_twice() -> None:
    """A module-level function name means one thing across the agent (there were three
    `_show`); a module's `main` entry point is not a helper."""
    defined: dict[str, list[str]] = defaultdict(list)
    for name, tree in agent_modules().items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "main":
                defined[node.name].append(name)
    twice = {helper: places for helper, places in defined.items() if len(places) > 1}
    assert twice == {}


def test_every_attribute_the_agent_sets_is_read() -> None:
    """`self.x = …` with nothing reading `.x` is dead state (HeartbeatLoop.sent was counted
    and never read). Exceptions (errors.py) carry data for their callers and are left out."""
    assigned: dict[str, list[str]] = defaultdict(list)
    read: set[str] = set()
    for name, tree in agent_modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            if isinstance(node.ctx, ast.Load):
                read.add(node.attr)
            elif (
                name != "errors.py" and isinstance(node.value, ast.Name) and node.value.id == "self"
            ):
                assigned[node.attr].append(f"{name}:{node.lineno}")
    unread = {attr: places for attr, places in assigned.items() if attr not in read}
    assert unread == {}
