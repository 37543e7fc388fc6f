"""An input's form fields ↔ the admin API's input request bodies (pure).

The form has one field per request property; the options are a YAML (or JSON) mapping in a
text area, since several input types nest options (``tls``, ``decoding``). The body built here
then goes through the admin API's own checks (``OpenApi.check_request`` and the ``inputs``
domain functions), so the page shows exactly the admin API's error messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from logpulse_agent.server.errors import Unprocessable

OVERRIDE_FIELDS = ("indexOverride", "sourcetypeOverride", "sourceOverride")


class _OptionsLoader(yaml.SafeLoader):
    """Safe YAML without aliases: ``*ref`` could expand a small text into a huge value."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(problem="aliases (*name) are not allowed", problem_mark=mark)
        return super().compose_node(parent, index)


def parse_options(text: str) -> dict[str, Any]:
    """The options mapping in ``text`` (empty → ``{}``); :class:`Unprocessable` otherwise."""
    if not text.strip():
        return {}
    try:
        value = yaml.load(text, Loader=_OptionsLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise Unprocessable(f"options are not valid YAML: {exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        raise Unprocessable(f"options are not valid YAML: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unprocessable(
            f"options must be a mapping of option: value, got {type(value).__name__}"
        )
    try:  # YAML has dates, sets and binary; JSON (and so the admin API) does not
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Unprocessable(f"options hold a value JSON cannot carry ({exc}); quote it") from None
    return value


def options_text(options: Mapping[str, Any]) -> str:
    """The options as the YAML the edit form starts from (empty for no options)."""
    if not options:
        return ""
    return yaml.safe_dump(dict(options), sort_keys=False, default_flow_style=False)


def input_body(form: Mapping[str, str], *, creating: bool) -> dict[str, Any]:
    """A ``CreateInputRequest`` (``creating``) or ``UpdateInputRequest`` body from the form.

    An unchecked ``enabled`` box means disabled. On an edit every override is sent (an empty
    one clears it); on a create only the ones filled in.
    """
    body: dict[str, Any] = {"name": form.get("name", "")}
    if creating:
        body["type"] = form.get("type", "")
    body["options"] = parse_options(form.get("options", ""))
    for field in OVERRIDE_FIELDS:
        value = form.get(field, "")
        if value or not creating:
            body[field] = value
    body["enabled"] = form.get("enabled") == "on"
    return body


def form_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """What an input form shows for a stored input (admin JSON)."""
    return {
        "type": item["type"],
        "name": item["name"],
        "options": options_text(item["options"]),
        "enabled": item["enabled"],
        **{field: item.get(field) or "" for field in OVERRIDE_FIELDS},
    }


def posted_values(form: Mapping[str, str], *, input_type: str | None = None) -> dict[str, Any]:
    """What an input form shows again after a refused post: exactly what was typed."""
    return {
        "type": input_type if input_type is not None else form.get("type", ""),
        "name": form.get("name", ""),
        "options": form.get("options", ""),
        "enabled": form.get("enabled") == "on",
        **{field: form.get(field, "") for field in OVERRIDE_FIELDS},
    }
