"""Reading a rendered config the way Vector 0.57 reads it, for tests: :func:`read_like_vector`.

Vector parses YAML with serde_yaml 0.9.34 (``src/config/format.rs``): ``from_str`` to a
``serde_yaml::Value``, ``Value::apply_merge()``, then ``from_value`` into the config structs.
This helper follows the same three steps, written from serde_yaml's source rather than shared
with the renderer, so the two can disagree when one is wrong:

1. Events from libyaml (PyYAML's C binding; serde_yaml uses unsafe-libyaml, a translation of the
   same libyaml 0.2.5), which decides line folding (NEL folds to a space), escapes and which
   characters a stream may hold. Without the binding, PyYAML's pure scanner, a port of it.
2. Plain scalars resolved like serde_yaml ``de.rs`` ``visit_untagged_scalar``: null, bool, then
   ``visit_int`` (``parse_unsigned_int`` into u64, ``parse_negative_int`` into i64, then the
   128-bit forms), then ``parse_f64`` unless ``digits_but_not_number``; quoted scalars are
   strings. Duplicate keys are an error, as in serde_yaml's mapping visitor.
3. ``apply_merge`` (``value/mod.rs``): a ``<<`` key of any mapping is removed and merged, and a
   value that is not a mapping or a list of mappings fails the whole config.

The typed step is :func:`same`: a string option read back as a number or null differs.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class VectorYamlError(Exception):
    """Raised where serde_yaml would fail to load the config."""


_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_F64 = re.compile(r"(?:[0-9]+|[0-9]+\.[0-9]*|[0-9]*\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _from_str_radix(text: str, radix: int, signed: bool, bits: int) -> int | None:
    """Rust's ``{u,i}N::from_str_radix``: one optional sign (``-`` only if signed), digits."""
    sign, body = 1, text
    if body.startswith("+"):
        body = body[1:]
    elif body.startswith("-") and signed:
        sign, body = -1, body[1:]
    allowed = set(_DIGITS[:radix] + _DIGITS[:radix].upper())
    if not body or not set(body) <= allowed:
        return None
    value = sign * int(body, radix)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return value if low <= value <= high else None


def _digits_but_not_number(scalar: str) -> bool:
    body = scalar[1:] if scalar[:1] in "+-" and scalar else scalar
    return len(body) > 1 and body.startswith("0") and all(c in "0123456789" for c in body[1:])


def _parse_unsigned(scalar: str, bits: int) -> int | None:
    unpositive = scalar[1:] if scalar.startswith("+") else scalar
    for prefix, radix in (("0x", 16), ("0o", 8), ("0b", 2)):
        if unpositive.startswith(prefix):
            rest = unpositive[2:]
            if rest.startswith(("+", "-")):
                return None
            value = _from_str_radix(rest, radix, False, bits)
            if value is not None:
                return value
    if unpositive.startswith(("+", "-")) or _digits_but_not_number(scalar):
        return None
    return _from_str_radix(unpositive, 10, False, bits)


def _parse_negative(scalar: str, bits: int) -> int | None:
    for prefix, radix in (("-0x", 16), ("-0o", 8), ("-0b", 2)):
        if scalar.startswith(prefix):
            value = _from_str_radix("-" + scalar[3:], radix, True, bits)
            if value is not None:
                return value
    if _digits_but_not_number(scalar):
        return None
    return _from_str_radix(scalar, 10, True, bits)


def _parse_f64(scalar: str) -> float | None:
    unpositive = scalar
    if scalar.startswith("+"):
        unpositive = scalar[1:]
        if unpositive.startswith(("+", "-")):
            return None
    if unpositive in (".inf", ".Inf", ".INF"):
        return float("inf")
    if scalar in ("-.inf", "-.Inf", "-.INF"):
        return float("-inf")
    if scalar in (".nan", ".NaN", ".NAN"):
        return float("nan")
    body = unpositive[1:] if unpositive.startswith("-") else unpositive
    if _F64.fullmatch(body):  # Rust's f64 grammar; inf/nan words parse but are not finite
        value = float(unpositive)
        if value not in (float("inf"), float("-inf")):
            return value
    return None


def resolve_plain(scalar: str) -> Any:
    """A plain scalar as serde_yaml's ``visit_untagged_scalar`` reads it."""
    if scalar in ("", "~", "null", "Null", "NULL"):
        return None
    if scalar in ("true", "True", "TRUE"):
        return True
    if scalar in ("false", "False", "FALSE"):
        return False
    for parse in (_parse_unsigned, _parse_negative):
        for bits in (64, 128):
            value = parse(scalar, bits)
            if value is not None:
                return value
    if not _digits_but_not_number(scalar):
        number = _parse_f64(scalar)
        if number is not None:
            return number
    return scalar


def _value(node: yaml.Node) -> Any:
    if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
        raise VectorYamlError(f"explicit tag {node.tag} (serde_yaml would keep a Tagged value)")
    if isinstance(node, yaml.ScalarNode):
        return resolve_plain(node.value) if node.style in (None, "") else node.value
    if isinstance(node, yaml.SequenceNode):
        return [_value(item) for item in node.value]
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = _value(key_node)
        if key in mapping:
            raise VectorYamlError(f"duplicate entry with key {key!r}")
        mapping[key] = _value(value_node)
    return mapping


def _apply_merge(value: Any) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "<<" in node:
                merge = node.pop("<<")
                parts = merge if isinstance(merge, list) else [merge]
                for part in parts:
                    if not isinstance(part, dict):
                        raise VectorYamlError("expected a mapping or list of mappings for merging")
                    for key, item in part.items():
                        node.setdefault(key, item)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def read_like_vector(body: bytes) -> Any:
    """The ``serde_yaml::Value`` Vector builds from ``body``; ``VectorYamlError`` if it fails."""
    try:
        node = yaml.compose(body.decode("utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise VectorYamlError(f"libyaml refuses the document: {exc}") from None
    value = None if node is None else _value(node)
    _apply_merge(value)
    return value


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (``1``, ``1.0`` and ``True`` all differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
