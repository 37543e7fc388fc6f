"""``logpulse-server`` admin commands for configuration: groups, inputs, preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from logpulse_agent.server.admin_client import (
    DEFAULT_URL,
    AdminClient,
    Session,
    admin_command,
    parse_option,
    table,
)


@click.group()
def group() -> None:
    """Agent groups: create, list, rename, delete."""


@admin_command(group, "create")
@click.argument("name")
@click.option("--slug", help="URL-safe id (default: derived from NAME).")
def group_create(s: Session, name: str, slug: str | None) -> None:
    g = s.call("POST", "/groups", {"name": name, **({"slug": slug} if slug else {})})
    s.emit(g, f"created group {g['slug']} ({g['id']}) at config version {g['configVersion']}")


@admin_command(group, "list")
def group_list(s: Session) -> None:
    rows = s.call("GET", "/groups")
    lines = [
        [g["slug"], g["name"], g["configVersion"], g["inputCount"], g["agentCount"], g["id"]]
        for g in rows
    ]
    s.emit(rows, table(("SLUG", "NAME", "VERSION", "INPUTS", "AGENTS", "ID"), lines))


@admin_command(group, "rename")
@click.argument("group_ref", metavar="GROUP")
@click.argument("name")
@click.option("--slug", help="Also change the slug.")
def group_rename(s: Session, group_ref: str, name: str, slug: str | None) -> None:
    body = {"name": name, **({"slug": slug} if slug else {})}
    g = s.call("PATCH", f"/groups/{group_ref}", body)
    s.emit(g, f"group {g['slug']} is now {g['name']!r}, config version {g['configVersion']}")


@admin_command(group, "delete")
@click.argument("group_ref", metavar="GROUP")
def group_delete(s: Session, group_ref: str) -> None:
    s.call("DELETE", f"/groups/{group_ref}")
    s.emit(None, f"deleted group {group_ref}")


@click.group("input")
def input_() -> None:
    """Inputs of a group: add, list, edit, enable, disable, remove."""


def _routing(index: str | None, sourcetype: str | None, source: str | None) -> dict[str, Any]:
    given = {"indexOverride": index, "sourcetypeOverride": sourcetype, "sourceOverride": source}
    return {k: v for k, v in given.items() if v is not None}


def _input_line(i: dict[str, Any], verb: str) -> str:
    state = "enabled" if i["enabled"] else "disabled"
    return f"{verb} {i['type']} input {i['name']!r} ({i['id']}, {state})"


_OPTION_HELP = "Vector option as key=value (value read as JSON when it parses); repeatable."
_ROUTING = [
    click.option("--index", help="Index override ('' restores the default)."),
    click.option("--sourcetype", help="Sourcetype override ('' restores the default)."),
    click.option("--source", help="Source override ('' restores the default)."),
]


def routing_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_ROUTING):
        fn = option(fn)
    return fn


@admin_command(input_, "add")
@click.argument("group_ref", metavar="GROUP")
@click.argument("input_type", metavar="TYPE")
@click.argument("name")
@click.option("--option", "-o", "options", multiple=True, help=_OPTION_HELP)
@routing_options
@click.option("--disabled", is_flag=True, help="Add it disabled.")
def input_add(
    s: Session,
    group_ref: str,
    input_type: str,
    name: str,
    options: tuple[str, ...],
    index: str | None,
    sourcetype: str | None,
    source: str | None,
    disabled: bool,
) -> None:
    body = {
        "type": input_type,
        "name": name,
        "options": dict(map(parse_option, options)),
        "enabled": not disabled,
        **_routing(index, sourcetype, source),
    }
    i = s.call("POST", f"/groups/{group_ref}/inputs", body)
    s.emit(i, _input_line(i, "added"))


@admin_command(input_, "list")
@click.argument("group_ref", metavar="GROUP")
def input_list(s: Session, group_ref: str) -> None:
    rows = s.call("GET", f"/groups/{group_ref}/inputs")
    lines = [
        [
            i["name"],
            i["type"],
            "yes" if i["enabled"] else "no",
            i["indexOverride"],
            i["sourcetypeOverride"],
            i["sourceOverride"],
            i["id"],
        ]
        for i in rows
    ]
    headers = ("NAME", "TYPE", "ENABLED", "INDEX", "SOURCETYPE", "SOURCE", "ID")
    s.emit(rows, table(headers, lines))


@admin_command(input_, "edit")
@click.argument("input_id")
@click.option("--name", help="New display name.")
@click.option("--option", "-o", "options", multiple=True, help=_OPTION_HELP + " Merged.")
@click.option("--replace-options", is_flag=True, help="Replace all options instead of merging.")
@routing_options
def input_edit(
    s: Session,
    input_id: str,
    name: str | None,
    options: tuple[str, ...],
    replace_options: bool,
    index: str | None,
    sourcetype: str | None,
    source: str | None,
) -> None:
    body: dict[str, Any] = _routing(index, sourcetype, source)
    if name is not None:
        body["name"] = name
    if options or replace_options:
        current = {} if replace_options else s.call("GET", f"/inputs/{input_id}")["options"]
        body["options"] = {**current, **dict(map(parse_option, options))}
    if not body:
        raise click.UsageError("nothing to change: give --name, --option or a routing override")
    i = s.call("PATCH", f"/inputs/{input_id}", body)
    s.emit(i, _input_line(i, "updated"))


@admin_command(input_, "enable")
@click.argument("input_id")
def input_enable(s: Session, input_id: str) -> None:
    i = s.call("PATCH", f"/inputs/{input_id}", {"enabled": True})
    s.emit(i, _input_line(i, "updated"))


@admin_command(input_, "disable")
@click.argument("input_id")
def input_disable(s: Session, input_id: str) -> None:
    i = s.call("PATCH", f"/inputs/{input_id}", {"enabled": False})
    s.emit(i, _input_line(i, "updated"))


@admin_command(input_, "remove")
@click.argument("input_id")
def input_remove(s: Session, input_id: str) -> None:
    s.call("DELETE", f"/inputs/{input_id}")
    s.emit(None, f"removed input {input_id}")


@click.command()
@click.argument("group_ref", metavar="GROUP")
@click.option(
    "--platform", type=click.Choice(["linux", "kubernetes"]), default="linux", show_default=True
)
@click.option("--url", envvar="LOGPULSE_SERVER_URL", default=DEFAULT_URL, show_default=True)
@click.option("--admin-token", envvar="LOGPULSE_ADMIN_TOKEN")
def preview(group_ref: str, platform: str, url: str, admin_token: str | None) -> None:
    """Print the Vector YAML agents of GROUP on PLATFORM get (byte for byte)."""
    client = AdminClient(url, admin_token)
    try:
        response = client.raw("GET", f"/groups/{group_ref}/preview", params={"platform": platform})
    finally:
        client.close()
    click.echo(response.content, nl=not response.content.endswith(b"\n"))
    click.echo(
        f"# version {response.headers.get('x-config-version')},"
        f" etag {response.headers.get('x-config-etag')}",
        err=True,
    )
