"""The import contract between the agent and the reference server (checked in CI).

- The server (``logpulse_agent.server``) may import only the agent's pure shared modules: the
  package root (``__version__``), ``redact`` and ``controlplane.protocol``; those in turn reach
  nothing beyond each other and ``errors``. The server never drags the agent's HTTP client,
  processes or state files in.
- The agent never imports the server: the release bundle leaves it out
  (``packaging/build_release.py``), and the daemon must not pay for Starlette.

Checked twice: statically over every ``import`` in the source (function-level ones included),
and by importing the real modules in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "logpulse_agent"
SERVER = "logpulse_agent.server"

# What the server may import from the agent.
SERVER_MAY_IMPORT = frozenset(
    {"logpulse_agent", "logpulse_agent.redact", "logpulse_agent.controlplane.protocol"}
)
# Everything those may reach in turn (the closure), all of it free of I/O.
PURE_SHARED = SERVER_MAY_IMPORT | {"logpulse_agent.errors", "logpulse_agent.controlplane"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def agent_imports(path: Path, source: str | None = None) -> set[str]:
    """The ``logpulse_agent`` modules ``path`` (or ``source`` as if it were there) imports,
    anywhere in it."""
    name = module_name(path)
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # `from pkg import mod` imports the module pkg.mod
            found |= {f"{base}.{a.name}" for a in node.names if is_module(f"{base}.{a.name}")}
    return {m for m in found if m == "logpulse_agent" or m.startswith("logpulse_agent.")}


def sources(server: bool) -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if module_name(path).startswith(SERVER) == server
    ]


def loaded_modules(*imports: str) -> set[str]:
    """The ``logpulse_agent`` modules a fresh interpreter has loaded after ``imports``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(imports)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('logpulse_agent'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout))


class TestServerSide:
    def test_the_server_imports_only_the_pure_shared_modules(self) -> None:
        """No server module imports any other part of the agent."""
        offending = {
            f"{module_name(path)} imports {imported}"
            for path in sources(server=True)
            for imported in agent_imports(path)
            if not imported.startswith(SERVER) and imported not in SERVER_MAY_IMPORT
        }
        assert not offending, sorted(offending)

    def test_the_shared_modules_are_a_closed_pure_set(self) -> None:
        """What the server may import reaches nothing outside the pure shared set."""
        for name in sorted(PURE_SHARED):
            path = PACKAGE.parent / name.replace(".", "/")
            path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
            assert agent_imports(path) <= PURE_SHARED, name

    def test_loading_the_server_loads_no_other_agent_module(self) -> None:
        """Importing the server's app and CLI for real pulls in only the shared modules."""
        loaded = loaded_modules("logpulse_agent.server.app", "logpulse_agent.server.cli")
        assert {m for m in loaded if not m.startswith(SERVER)} <= PURE_SHARED


class TestAgentSide:
    def test_no_agent_module_imports_the_server(self) -> None:
        """Not even inside a function."""
        offending = {
            f"{module_name(path)} imports {imported}"
            for path in sources(server=False)
            for imported in agent_imports(path)
            if imported.startswith(SERVER)
        }
        assert not offending, sorted(offending)

    def test_loading_every_agent_module_loads_no_server_module(self) -> None:
        """All of the agent together, imported for real, never touches the server."""
        # __main__ runs the CLI when imported.
        agent = [module_name(p) for p in sources(server=False) if p.stem != "__main__"]
        loaded = loaded_modules(*agent)
        assert set(agent) <= loaded
        assert not {m for m in loaded if m.startswith(SERVER)}


class TestTheChecker:
    def test_it_sees_absolute_relative_and_function_level_imports(self) -> None:
        """The static check would catch each way of writing a forbidden import."""
        source = (
            "from logpulse_agent.daemon import compose\n"
            "from ..state import atomic\n"
            "def f():\n"
            "    import logpulse_agent.controlplane.client\n"
        )
        assert agent_imports(PACKAGE / "server" / "render.py", source) == {
            "logpulse_agent.daemon",
            "logpulse_agent.daemon.compose",
            "logpulse_agent.state",
            "logpulse_agent.state.atomic",
            "logpulse_agent.controlplane.client",
        }
