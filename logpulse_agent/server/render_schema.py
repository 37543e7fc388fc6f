"""A small schema language for the Vector options an input may carry, and its checker.

An input's options are a tree of plain values (the JSON the admin API received). Each input type
declares which Vector options it accepts with an :class:`Opt` per option; :func:`check_options`
walks the tree, rejects anything not declared, and returns a normalised copy (``None`` dropped,
tuples made lists, numbers of ``float`` options made floats) so that equal inputs render to equal
bytes.

Every rejection is a ``ValueError`` whose message is one line naming the option by its dotted
path, for example ``syslog input: option 'mode' must be one of tcp, udp, unix (got 'tls')``.

Strings are checked everywhere by ``config_text`` for what must never reach a rendered config
(control characters, secret and environment references, tokens), and a map key ``<<`` is
refused: serde_yaml's ``Value::apply_merge`` takes it as a merge key even when quoted, and the
whole config fails to load (Vector 0.57 ``src/config/format.rs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from logpulse_agent.redact import redact
from logpulse_agent.server.config_text import check_text, text_problem

Kind = Literal["str", "uint", "float", "bool", "str_list", "str_map", "object"]

# Vector reads counts, sizes and durations into u64/usize; larger values fail to parse.
UINT_MAX = 2**63 - 1
MAX_STRING = 4096

MERGE_KEY = "<<"

_KIND_TEXT: dict[str, str] = {
    "str": "a string",
    "uint": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str_list": "a list of strings",
    "str_map": "an object whose values are lists of strings",
    "object": "an object",
}


@dataclass(frozen=True)
class Opt:
    """How one option is checked.

    ``when=("mode", ("tcp", "udp"))`` makes the option exist only when its sibling ``mode`` has
    one of those values: it is rejected otherwise, and ``required`` applies only then.
    ``check`` gets the normalised value and returns an error text, or ``None`` when it is fine.
    """

    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    fields: Mapping[str, Opt] = field(default_factory=dict)
    when: tuple[str, tuple[str, ...]] | None = None
    nonempty: bool = False
    minimum: float = 0
    maximum: float = UINT_MAX
    absolute_path: bool = False
    allow_control: bool = False
    check: Callable[[Any], str | None] | None = None
    item_check: Callable[[str], str | None] | None = None
    refused: str = ""


def string(**kw: Any) -> Opt:
    """A string option (non-empty unless ``nonempty=False`` is passed)."""
    kw.setdefault("nonempty", True)
    return Opt("str", **kw)


def choice(*values: str, **kw: Any) -> Opt:
    """A string option that must be one of ``values``."""
    return Opt("str", choices=values, nonempty=True, **kw)


def path(**kw: Any) -> Opt:
    """An absolute path on the host."""
    return Opt("str", absolute_path=True, nonempty=True, **kw)


def uint(**kw: Any) -> Opt:
    """A whole number, ``minimum`` to ``maximum`` (default 0 to ``UINT_MAX``)."""
    return Opt("uint", **kw)


def number(**kw: Any) -> Opt:
    """A finite number (rendered as a float)."""
    return Opt("float", **kw)


def boolean(**kw: Any) -> Opt:
    """``true`` or ``false``."""
    return Opt("bool", **kw)


def strings(**kw: Any) -> Opt:
    """A list of strings (each non-empty); ``item_check`` is applied to each of them."""
    return Opt("str_list", **kw)


def refused(kind: Kind, reason: str) -> Opt:
    """A real Vector option the control plane will not render; ``reason`` says why."""
    return Opt(kind, refused=reason)


def string_map(**kw: Any) -> Opt:
    """An object mapping names to lists of strings (journald's ``include_matches``)."""
    return Opt("str_map", **kw)


def obj(fields: Mapping[str, Opt], **kw: Any) -> Opt:
    """A nested object with its own declared options."""
    return Opt("object", fields=fields, **kw)


def check_options(
    options: object, schema: Mapping[str, Opt], where: str, prefix: str = ""
) -> dict[str, Any]:
    """Check ``options`` against ``schema`` and return the normalised copy.

    ``where`` starts every message (``"syslog input"``); ``prefix`` is the dotted path of a
    nested object. Raises ``ValueError`` on the first problem found, in option-name order, so
    the same bad input always gives the same message.
    """
    if not isinstance(options, Mapping):
        what = f"option {prefix[:-1]!r}" if prefix else "options"
        raise ValueError(f"{where}: {what} must be an object")
    for key in options:
        if not isinstance(key, str):
            raise ValueError(f"{where}: option names must be strings (got {_show(key)})")
    unknown = sorted(k for k in options if k not in schema)
    if unknown:
        allowed = ", ".join(sorted(schema))
        raise ValueError(
            f"{where}: unknown option {prefix + unknown[0]!r} (allowed here: {allowed})"
        )
    out: dict[str, Any] = {}
    # Options without a condition first: conditions refer to them (``mode``, ``format``).
    for name in sorted(schema, key=lambda n: (schema[n].when is not None, n)):
        opt, dotted = schema[name], prefix + name
        present = options.get(name) is not None
        if opt.when is not None:
            key, values = opt.when
            if out.get(key) not in values:
                if present:
                    raise ValueError(
                        f"{where}: option {dotted!r} applies only when "
                        f"{prefix + key} is {' or '.join(values)}"
                    )
                continue
        if not present:
            if opt.required:
                raise ValueError(f"{where}: option {dotted!r} is required")
            continue
        if opt.refused:
            raise ValueError(f"{where}: option {dotted!r} is not supported: {opt.refused}")
        out[name] = _check_value(options[name], opt, where, dotted)
    return out


def _check_value(value: object, opt: Opt, where: str, dotted: str) -> Any:
    result: Any
    if opt.kind == "str":
        result = _check_str(value, opt, where, dotted)
    elif opt.kind == "uint":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(where, dotted, opt, value)
        _check_range(value, opt, where, dotted)
        result = value
    elif opt.kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _type_error(where, dotted, opt, value)
        if not math.isfinite(value):
            raise ValueError(f"{where}: option {dotted!r} must be a finite number")
        _check_range(value, opt, where, dotted)
        result = float(value)
    elif opt.kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(where, dotted, opt, value)
        result = value
    elif opt.kind == "str_list":
        result = _check_list(value, opt, where, dotted)
    elif opt.kind == "str_map":
        if not isinstance(value, Mapping):
            raise _type_error(where, dotted, opt, value)
        item = Opt("str_list", nonempty=True)
        result = {}
        for key in sorted(value, key=str):
            if not isinstance(key, str):
                raise _type_error(where, dotted, opt, value)
            _check_str(key, Opt("str", nonempty=True), where, f"{dotted} key")
            if key == MERGE_KEY:
                raise ValueError(
                    f"{where}: option {dotted!r} must not have the key '<<': Vector's YAML "
                    "reader takes it as a merge key and refuses the whole config"
                )
            result[key] = _check_list(value[key], item, where, f"{dotted}.{key}")
    else:
        result = check_options(value, opt.fields, where, dotted + ".")
    if opt.check is not None:
        problem = opt.check(result)
        if problem:
            got = f" (got {_show(result)})" if isinstance(result, (str, int)) else ""
            raise ValueError(f"{where}: option {dotted!r} {problem}{got}")
    return result


def _check_str(value: object, opt: Opt, where: str, dotted: str) -> str:
    if not isinstance(value, str):
        raise _type_error(where, dotted, opt, value)
    # Blank means empty for text of control characters ("\t" is a valid line delimiter).
    if opt.nonempty and not (value if opt.allow_control else value.strip()):
        raise ValueError(f"{where}: option {dotted!r} must not be empty")
    if len(value) > MAX_STRING:
        raise ValueError(f"{where}: option {dotted!r} is longer than {MAX_STRING} characters")
    problem = text_problem(value, allow_c0=opt.allow_control)
    if problem:
        raise ValueError(f"{where}: option {dotted!r} {problem}")
    check_text(value, where, f"option {dotted!r}")
    if opt.choices and value not in opt.choices:
        raise ValueError(
            f"{where}: option {dotted!r} must be one of {', '.join(opt.choices)} "
            f"(got {_show(value)})"
        )
    if opt.absolute_path and not value.startswith("/"):
        raise ValueError(
            f"{where}: option {dotted!r} must be an absolute path (got {_show(value)})"
        )
    return value


def _check_list(value: object, opt: Opt, where: str, dotted: str) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise _type_error(where, dotted, opt, value)
    if opt.nonempty and not value:
        raise ValueError(f"{where}: option {dotted!r} must not be empty")
    item = Opt("str", nonempty=True, absolute_path=opt.absolute_path)
    checked = []
    for i, v in enumerate(value):
        checked.append(_check_str(v, item, where, f"{dotted}[{i}]"))
        problem = opt.item_check(v) if opt.item_check else None
        if problem:
            raise ValueError(f"{where}: option {f'{dotted}[{i}]'!r} {problem} (got {_show(v)})")
    return checked


def _check_range(value: float, opt: Opt, where: str, dotted: str) -> None:
    if not opt.minimum <= value <= opt.maximum:
        low, high = _fmt_num(opt.minimum), _fmt_num(opt.maximum)
        raise ValueError(f"{where}: option {dotted!r} must be between {low} and {high}")


def _type_error(where: str, dotted: str, opt: Opt, value: object) -> ValueError:
    return ValueError(
        f"{where}: option {dotted!r} must be {_KIND_TEXT[opt.kind]} (got {type(value).__name__})"
    )


def _fmt_num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: object) -> str:
    """A short, token-free rendering of a rejected value for an error message."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return redact(text)
