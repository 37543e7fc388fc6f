"""The docstrings that describe the agent's files say what is really on disk (issue 10: the
ledger's format and the state layout had gone stale).

Each record's "On disk" example lists exactly the keys the agent writes, and ``state/layout.py``
lists exactly the paths :class:`Layout` knows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from logpulse_agent.actions import journal, ledger
from logpulse_agent.config import store
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.state import layout
from logpulse_agent.state.layout import Layout


def documented_keys(doc: str | None) -> set[str]:
    """The keys of the ``{…}`` that follows "On disk" in ``doc``: ``"key": value`` pairs, or a
    bare list of ``"key"`` names."""
    assert doc is not None and "On disk" in doc
    text = doc[doc.index("On disk") :]
    start = text.index("{")
    depth, end = 0, start
    while True:
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
        end += 1
    example = text[start : end + 1]
    pattern = r'"(\w+)"\s*:' if ":" in example else r'"(\w+)"'
    return set(re.findall(pattern, example))


def written_keys(doc: Any) -> set[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(doc, dict):
        return set(doc) | {key for value in doc.values() for key in written_keys(value)}
    if isinstance(doc, list):
        return {key for item in doc for key in written_keys(item)}
    return set()


def on_disk(path: Path) -> set[str]:
    return written_keys(json.loads(path.read_text()))


class TestRecordFormats:
    def test_the_action_ledger(self, tmp_path: Path) -> None:
        seen = ledger.ActionLedger(tmp_path / "actions-seen.json")
        seen.record("act-1")
        assert on_disk(seen.path) == documented_keys(ledger.__doc__)

    def test_the_action_journal(self, tmp_path: Path) -> None:
        outbox = journal.ActionJournal(tmp_path / "outbox.json")
        outbox.add(ActionResult("act-1", "done", {}))
        assert on_disk(outbox.path) == documented_keys(journal.__doc__)

    def test_applied_and_rejected(self, tmp_path: Path) -> None:
        configs = store.ConfigStore(Layout(tmp_path, tmp_path, tmp_path))
        configs.save_applied(store.AppliedConfig())
        configs.save_rejected(store.RejectedConfig(1, "sha256:x", "bad", "t"))
        assert on_disk(configs.layout.applied) == documented_keys(store.AppliedConfig.__doc__)
        assert on_disk(configs.layout.rejected) == documented_keys(store.RejectedConfig.__doc__)


def test_the_layout_docstring_lists_every_path() -> None:
    """Every file and directory Layout names is in its table, and nothing else is."""
    paths = Layout(Path("/c"), Path("/s"), Path("/l"))
    roots = {Path("/c"): "config_dir", Path("/s"): "state_dir", Path("/l"): "log_dir"}
    known = {
        f"{roots[value.parent]}/{value.name}"
        for name, value in vars(paths).items()
        if isinstance(value, Path) and name not in ("config_dir", "state_dir", "log_dir")
    }
    listed = set()
    assert layout.__doc__ is not None
    for line in layout.__doc__.splitlines():
        if not line.startswith(tuple(roots.values())):
            continue
        first, *more = re.split(r",\s+", line.split("  ")[0].strip())
        root, _, name = first.partition("/")
        listed |= {f"{root}/{entry.rstrip('/')}" for entry in [name, *more]}
    assert listed == known
