"""Tokens never survive redaction."""

from __future__ import annotations

from logpulse_agent.redact import redact, redact_value


def test_masks_agent_and_bootstrap_tokens() -> None:
    """Both token kinds are masked wherever they stand in a text."""
    text = "got AGT_abc-DEF_123 and EBT_zzz, header Bearer AGT_q"
    out = redact(text)
    assert "abc-DEF_123" not in out and "zzz" not in out and "AGT_q" not in out
    assert "AGT_***" in out and "EBT_***" in out


def test_nested_values_keep_their_shape() -> None:
    """Dicts and lists are walked; other values pass unchanged."""
    value = {"a": ["EBT_secret", 3], "b": {"c": "AGT_x1"}, "n": None}
    assert redact_value(value) == {"a": ["EBT_***", 3], "b": {"c": "AGT_***"}, "n": None}


def test_keys_are_masked_too_and_alike_keys_keep_both_values() -> None:
    """A token used as a dict key is masked like a value; keys that mask alike are not merged."""
    token_a, token_b = "AGT_" + "a" * 43, "AGT_" + "b" * 43
    value = {token_a: 1, "x": {f"Bearer {token_b}": [token_b]}, token_b: 2, 7: "AGT_c"}
    assert redact_value(value) == {
        "AGT_***": 1,
        "x": {"Bearer ***": ["AGT_***"]},
        "AGT_***#2": 2,
        7: "AGT_***",
    }
