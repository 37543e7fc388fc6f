"""What Vector reads from the rendered YAML is exactly what was stored (issue 10, section 1).

The reader is ``tests/server/vector_yaml.py``: libyaml events, serde_yaml's scalar resolution and
merge keys, written independently of the renderer's quoting rules.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from logpulse_agent.server.render import (
    RESERVED_PREFIX,
    IngestSettings,
    InputSpec,
    applies_to,
    render_config,
    routing_for,
    source_id,
    validate_input,
    validate_routing_override,
)
from logpulse_agent.server.render_inputs import SCHEMAS
from logpulse_agent.server.render_schema import Opt
from tests.server.vector_yaml import VectorYamlError, read_like_vector, resolve_plain, same

INGEST = IngestSettings(endpoint="https://ingest.logpulse.io")
INPUT_ID = "0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e99"

# Text that YAML or serde_yaml treat specially, mixed into every generated string.
_SPECIAL = list("\x85\u2028\u2029\ufeff\x80\x9f\x7f\t\r\n\x00:#'\"{}[]&*!|>%@`-?, \\<=~")
_SCALARS = [
    "1e3", "+0o7", "-0o7", "-0b1", "+0x1f", "0x1F", "0b101", "1.", ".5", "-.5", "+1", "-1",
    "0123", "1_000", "null", "Null", "~", "", "true", "False", "yes", "on", ".inf", "-.Inf",
    ".nan", "<<", "1e400", "Infinity", "nan", "12:30", "2024-01-01", "0.0.0.0:514",
]  # fmt: skip
_CHAR = st.one_of(
    st.characters(blacklist_categories=()),  # surrogates included: JSON can produce them
    st.sampled_from(_SPECIAL),
)
_TEXT = st.one_of(st.text(_CHAR, max_size=10), st.sampled_from(_SCALARS))
_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
# Plausible values for options whose checks random text would rarely pass.
_LIKELY: dict[str, st.SearchStrategy[Any]] = {
    "address": st.sampled_from(
        ["0.0.0.0:514", "[::]:6514", "127.0.0.1:0080", "[fe80::1%2]:9000", "systemd", "systemd#3"]
    ),
    "bootstrap_servers": st.sampled_from(["kafka:9092", "k1,k2:9093", "[::1]:9092"]),
    "topics": st.lists(st.sampled_from(["app", "^audit-.+", "^(a|b)[0-9]{1,3}$", "x.y"])),
    "permit_origin": st.lists(st.sampled_from(["10.0.0.0/8", "::1/128", "10.1.2.3/32"])),
    "include": st.lists(_WORD.map(lambda w: f"/var/log/{w}/**/*.log"), min_size=1),
    "line_delimiter": st.sampled_from(["\r\n", "\t", "\n", " ", "\x00", "||", "\x1e\n"]),
    "path": _WORD.map(lambda w: f"/run/{w}.sock"),
}


def _value_for(name: str, opt: Opt) -> st.SearchStrategy[Any]:
    text_path = _TEXT.map(lambda t: "/" + t)
    if opt.kind == "str":
        if opt.choices:
            return st.sampled_from(opt.choices)
        return _LIKELY.get(name, text_path if opt.absolute_path else _TEXT) | _TEXT
    if opt.kind == "uint":
        return st.integers(int(opt.minimum), min(int(opt.maximum), 2**63 - 1))
    if opt.kind == "float":
        return st.floats(opt.minimum, opt.maximum) | st.integers(0, 100)
    if opt.kind == "bool":
        return st.booleans()
    if opt.kind == "str_list":
        item = text_path if opt.absolute_path else _TEXT
        return _LIKELY.get(name, st.lists(item, max_size=3)) | st.lists(item, max_size=3)
    if opt.kind == "str_map":
        return st.dictionaries(_TEXT, st.lists(_TEXT, min_size=1, max_size=2), max_size=3)
    return _options(opt.fields)


@st.composite
def _options(draw: st.DrawFn, schema: dict[str, Opt]) -> dict[str, Any]:
    """Options of ``schema``: unconditioned ones first, then those whose condition holds."""
    out: dict[str, Any] = {}
    for name in sorted(schema, key=lambda n: (schema[n].when is not None, n)):
        opt = schema[name]
        if opt.refused or (opt.when and out.get(opt.when[0]) not in opt.when[1]):
            continue
        if opt.required or draw(st.booleans()):
            out[name] = draw(_value_for(name, opt))
    return out


@st.composite
def _accepted_input(draw: st.DrawFn) -> tuple[InputSpec, dict[str, Any]]:
    """An input the admin API would store, with the options it stores."""
    type_ = draw(st.sampled_from(sorted(SCHEMAS)))
    try:
        stored = validate_input(type_, draw(_options(SCHEMAS[type_])))
    except ValueError:
        reject()
    overrides = {}
    for field in ("sourcetype", "source"):
        try:
            overrides[field] = validate_routing_override(field, draw(_TEXT))
        except ValueError:
            overrides[field] = None
    spec = InputSpec(
        id=INPUT_ID,
        type=type_,
        name="x",
        options=stored,
        sourcetype_override=overrides["sourcetype"],
        source_override=overrides["source"],
    )
    return spec, stored


def _render_and_read(spec: InputSpec) -> dict[str, Any]:
    platform = "linux" if applies_to(spec.type, "linux") else "kubernetes"
    doc = read_like_vector(render_config([spec], platform, INGEST))
    assert isinstance(doc, dict)
    return doc


class TestVectorReadsWhatWasStored:
    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(_accepted_input())
    @example(
        (
            InputSpec(INPUT_ID, "journald", "x", {"include_units": ["+0o7", "1e3"]}),
            {"include_units": ["+0o7", "1e3"]},
        )
    )
    def test_every_accepted_input_reads_back_exactly(
        self, accepted: tuple[InputSpec, dict[str, Any]]
    ) -> None:
        """The source Vector builds has exactly the stored options, types included."""
        spec, stored = accepted
        doc = _render_and_read(spec)
        assert same(doc["sources"][source_id(spec.id)], {**stored, "type": spec.type})
        (sink,) = doc["sinks"].values()
        assert same([sink["index"], sink["sourcetype"], sink["source"]], list(routing_for(spec)))
        for component in (*doc["sources"], *doc["sinks"]):
            assert re.fullmatch(r"(in_[0-9a-f]{32}|out_[0-9a-f]{12})", component)

    @pytest.mark.parametrize("value", ["team\x85a", "a\x80b", "x\x9f", "bad\x7f"])
    def test_c1_controls_are_refused_not_folded(self, value: str) -> None:
        """libyaml folds NEL to a space (and C1 never belongs here): 422, not a changed value."""
        with pytest.raises(ValueError, match=r"control character U\+00[7-9][0-9A-F]"):
            validate_input("journald", {"include_units": [value]})
        with pytest.raises(ValueError, match="control character"):
            validate_routing_override("source", value)

    def test_nel_would_reach_vector_as_a_space(self) -> None:
        """Why NEL is refused: the reader folds it (this is the helper, not the renderer)."""
        assert read_like_vector(b"a: 'team\xc2\x85  a'\n") == {"a": "team a"}

    def test_unpaired_surrogate_is_refused(self) -> None:
        """JSON's "\\ud800" gives a string no UTF-8 file can hold."""
        with pytest.raises(ValueError, match="unpaired surrogate"):
            validate_input("demo_logs", {"format": "shuffle", "lines": ["a\ud800"]})

    @pytest.mark.parametrize("value", ["x\u2028y", "p\u2029q", "\ufeffbom"])
    def test_line_separators_and_bom_round_trip(self, value: str) -> None:
        """Not control characters, and libyaml keeps them: accepted and read back unchanged."""
        spec = InputSpec(INPUT_ID, "demo_logs", "x", {"format": "shuffle", "lines": [value]})
        assert _render_and_read(spec)["sources"][source_id(INPUT_ID)]["lines"] == [value]

    @pytest.mark.parametrize("key", ["<<", "'<<'"])
    def test_merge_key_breaks_the_whole_config(self, key: str) -> None:
        """serde_yaml merges '<<' even when quoted: a list value fails the load."""
        with pytest.raises(VectorYamlError, match="merging"):
            read_like_vector(f"a:\n  {key}: [x]\n".encode())

    def test_merge_key_is_refused_in_string_maps(self) -> None:
        """journald's include_matches is the one option with free keys: '<<' is a 422."""
        with pytest.raises(ValueError, match="must not have the key '<<'"):
            validate_input("journald", {"include_matches": {"<<": ["x"]}})

    @pytest.mark.parametrize("delimiter", ["\r\n", "\t", "\n", " ", "\x1e", "\r"])
    def test_line_delimiter_of_controls_or_spaces_is_accepted_and_read_back(
        self, delimiter: str
    ) -> None:
        """'\\r\\n' and '\\t' are valid delimiters, not empty ones, and survive the YAML."""
        options = {"include": ["/var/log/*.log"], "line_delimiter": delimiter}
        stored = validate_input("file", options)
        spec = InputSpec(INPUT_ID, "file", "x", stored)
        assert _render_and_read(spec)["sources"][source_id(INPUT_ID)]["line_delimiter"] == (
            delimiter
        )

    def test_empty_line_delimiter_is_still_refused(self) -> None:
        """An empty delimiter would never split a line."""
        with pytest.raises(ValueError, match="'line_delimiter' must not be empty"):
            validate_input("file", {"include": ["/x"], "line_delimiter": ""})

    @pytest.mark.parametrize("value", ["+0o7", "-0o7", "-0b1", "+0x1f", "1.", "-.5", "0b1"])
    def test_strings_serde_yaml_reads_as_numbers_are_quoted(self, value: str) -> None:
        """serde_yaml reads these plain scalars as numbers; rendered, they stay strings."""
        assert not isinstance(resolve_plain(value), str)
        spec = InputSpec(INPUT_ID, "journald", "x", {"include_units": [value]})
        assert _render_and_read(spec)["sources"][source_id(INPUT_ID)]["include_units"] == [value]


class TestReservedComponentIds:
    @given(st.text(min_size=1, max_size=40) | st.just("logpulse_internal_metrics"))
    def test_no_input_id_yields_a_reserved_component_id(self, input_id: str) -> None:
        """SPEC 11.1: whatever the input id, its source is in_<hex>, never logpulse_…."""
        assert source_id(input_id).startswith("in_")
        assert not source_id(input_id).startswith(RESERVED_PREFIX)

    def test_rendering_refuses_a_reserved_id_if_one_were_generated(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The guarantee is checked, not only assumed: a reserved id fails rendering."""
        import logpulse_agent.server.render as render

        monkeypatch.setattr(render, "source_id", lambda _id: "logpulse_internal_metrics")
        spec = InputSpec(INPUT_ID, "demo_logs", "x", {"format": "json"})
        with pytest.raises(ValueError, match="reserved prefix"):
            render.render_config([spec], "linux", INGEST)
