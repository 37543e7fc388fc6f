"""The difference between two rendered configs, as lines a page can mark up (pure).

A unified diff (``difflib``, three lines of context) split into lines that each know whether
they were added, removed, are context or a hunk header, so the page can mark them with a sign
and a class (readable without colour: the ``+``/``-`` stays in the text).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

CONTEXT_LINES = 3


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add" | "remove" | "context" | "hunk" | "file"
    text: str


def _kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "remove"
    return "context"


def unified(old: str, new: str, old_name: str, new_name: str) -> list[DiffLine]:
    """The lines of ``diff -u old new``; empty when the texts are equal."""
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        fromfile=old_name,
        tofile=new_name,
        n=CONTEXT_LINES,
        lineterm="",
    )
    return [DiffLine(_kind(line), line) for line in lines]


def counts(lines: list[DiffLine]) -> tuple[int, int]:
    """``(added, removed)`` lines."""
    added = sum(1 for line in lines if line.kind == "add")
    removed = sum(1 for line in lines if line.kind == "remove")
    return added, removed
