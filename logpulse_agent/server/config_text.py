"""Text that may reach a rendered config: :func:`text_problem` and :func:`check_text`.

Every string of an input (options, map keys, routing overrides) and the ingest URL pass here.

- Never Vector secret placeholders (``SECRET[…]`` would make Vector resolve a secret into an
  arbitrary option), environment references (``${…}``) or anything that looks like a LogPulse
  token (credentials never belong in input options).
- Never text Vector's YAML reader would not give back unchanged. Vector 0.57 reads its config
  with serde_yaml 0.9 over libyaml (``src/config/format.rs``): libyaml takes NEL (U+0085) for a
  line break and folds it (``team\\u0085a`` arrives as ``team a``), and an unpaired surrogate
  (JSON's ``\\ud800`` escape gives one) cannot be written as UTF-8 at all.
- Never control characters (C0, DEL and C1, NEL among them): they do not belong in these
  options, except the C0 ones an option allows (``line_delimiter``), which ``render_yaml``
  writes as escapes. LINE/PARAGRAPH SEPARATOR and BOM are not control characters, and libyaml
  keeps them, so they pass.
"""

from __future__ import annotations

import re

from logpulse_agent.redact import TOKEN_RE

_C0_RE = re.compile(r"[\x00-\x1f]")
# Never allowed: DEL and C1 controls (NEL among them), unpaired surrogates.
_NEVER_RE = re.compile("[\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str, *, allow_c0: bool = False) -> str | None:
    """Why ``value`` may not be rendered, as the end of a sentence ("must not …"), or None."""
    found = _NEVER_RE.search(value) or (None if allow_c0 else _C0_RE.search(value))
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"must not contain an unpaired surrogate (U+{code:04X})"
    return f"must not contain control character U+{code:04X}"


def check_text(value: str, where: str, what: str) -> None:
    """Raise ``ValueError`` for a secret or environment reference, or a token, in ``value``."""
    if "SECRET[" in value or "${" in value:
        raise ValueError(
            f"{where}: {what} must not contain secret or environment references "
            "('SECRET[' or '${')"
        )
    if TOKEN_RE.search(value):
        raise ValueError(
            f"{where}: {what} looks like a LogPulse token; credentials never belong here"
        )
