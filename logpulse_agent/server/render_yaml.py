"""Writing a rendered config as YAML that Vector reads back exactly: :func:`dump_config`.

Vector 0.57 parses its config with serde_yaml 0.9 (``src/config/format.rs``: ``from_str`` to a
``Value``, ``apply_merge``, then ``from_value``), which resolves plain scalars by its own rules
(``src/de.rs`` ``visit_untagged_scalar``): ``~``/``null``/``Null``/``NULL`` and the empty string
are null, ``true``/``True``/``TRUE`` and the ``false`` forms are booleans, decimal integers
(optionally signed, no leading zero), ``0x``/``0o``/``0b`` integers (optionally signed) and
anything Rust's ``f64`` parser reads as a finite number (``1e3``, ``.5``, ``1.``) are numbers.
A string option given a number fails to load. PyYAML writes YAML 1.1 and quotes only what 1.1
would misread ('yes', '1.0'), so every string matching the rules above is single-quoted here.

Strings holding control characters (only ``line_delimiter`` may: ``\\r\\n``, ``\\t``) are written
double-quoted, where every such character is an escape (``\\r``, ``\\t``) that libyaml reads
back as it was; written raw they would be folded or refused. No anchors or aliases are written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

_NOT_A_STRING = re.compile(
    r"""[-+]?[0-9]+|[-+]?0o[0-7]+|[-+]?0x[0-9a-fA-F]+|[-+]?0b[01]+
    |[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |null|Null|NULL|~|true|True|TRUE|false|False|FALSE""",
    re.VERBOSE,
)
_NEEDS_ESCAPES = re.compile(r"[\x00-\x1f\x7f]")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that never writes anchors or aliases, and quotes strings YAML 1.2 misreads."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = None
    if _NEEDS_ESCAPES.search(data):
        style = '"'
    elif _NOT_A_STRING.fullmatch(data):
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_config(doc: Mapping[str, Any]) -> bytes:
    """``doc`` as UTF-8 YAML: keys sorted, block style, no line folding, same bytes every time."""
    text = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,  # never fold long strings: same bytes whatever the content length
        indent=2,
        line_break="\n",
    )
    return text.encode("utf-8")
