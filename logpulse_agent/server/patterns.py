"""Glob patterns and Kafka topic patterns, checked with the rules of the code that reads them.

Each ``*_problem`` function returns ``None`` for a value that is fine, or the end of a one-line
error sentence for ``render_schema`` to prefix with the option.

Globs. Every glob option of the rendered sources is compiled by the ``glob`` crate (0.3.3 in
Vector 0.57.0's ``Cargo.lock``), ``Pattern::new`` in rust-lang/glob ``src/lib.rs``: ``[…]`` must be
closed (``[!…]`` needs one character before the ``]``), ``***`` is refused, and ``**`` must be a
whole path component. How each option reaches it differs, and so does what a bad one does:

- ``file`` ``include`` (``lib/file-source/src/paths_provider.rs``): ``glob::glob_with`` compiles the
  whole pattern *and* each ``/``-separated component on every scan, ``.expect("failed to read
  glob pattern")``: a bad one makes Vector panic once it runs, which ``vector validate
  --no-environment`` does not catch (so every agent of the group would crash-loop).
- ``file`` ``exclude``: ``Pattern::new`` of the path rebuilt from its components (repeated ``/``
  and ``.`` dropped); a bad one makes ``Glob::new`` return None, ``.expect("invalid glob
  patterns")`` in ``src/sources/file.rs``: a panic at start.
- ``kubernetes_logs`` ``include/exclude_paths_glob_patterns``: ``Pattern::new`` in
  ``prepare_glob_patterns`` (``src/sources/kubernetes_logs/mod.rs``): a build error.
- ``http_server`` ``headers`` / ``query_parameters``: ``build_param_matcher`` compiles only the
  entries containing ``*`` (``src/sources/http_server.rs``); the others are exact names.

Kafka topics (librdkafka 2.12.1 ``rd_kafka_subscribe``, called from ``src/sources/kafka.rs`` at
build): a topic starting with ``^`` is a POSIX extended regular expression compiled with
``regcomp``, and a list with a duplicate or an uncompilable entry is refused. The accepted
regular expressions are a portable subset (literal topic characters, ``\\``-escaped punctuation,
``.``, bracket lists, groups, alternation, ``* + ?`` and ``{m,n}``) that every ``regcomp`` reads
the same way; other topics must be Kafka topic names (``[A-Za-z0-9._-]``, at most 249).
"""

from __future__ import annotations

import re
import warnings

_GLOB_HINT = "(see https://docs.rs/glob/0.3.3/glob/struct.Pattern.html)"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
# Tokens of the portable regular-expression subset, after the leading '^'.
_REGEX_TOKEN = re.compile(
    r"""[A-Za-z0-9_-]            # a literal topic character
    | \\[.^$*+?()\[\]{}|\\-]     # escaped punctuation
    | \[\^?\]?[A-Za-z0-9._-]*\]  # a bracket list (']' first is a literal)
    | \{[0-9]{1,3}(?:,[0-9]{0,3})?\}  # an interval
    | [.*+?()|$]""",
    re.VERBOSE,
)


def glob_problem(pattern: str) -> str | None:
    """Why rust glob's ``Pattern::new`` refuses ``pattern``, or None (a port of its loop)."""
    chars, i = pattern, 0
    while i < len(chars):
        c = chars[i]
        if c == "*":
            start = i
            while i < len(chars) and chars[i] == "*":
                i += 1
            count = i - start
            if count > 2:
                return f"has '***': wildcards are either * or ** {_GLOB_HINT}"
            if count == 2:
                begins = start == 0 or chars[start - 1] == "/"
                ends = i == len(chars) or chars[i] == "/"
                if not (begins and ends):
                    return (
                        "uses ** inside a path component: ** must be a whole component, "
                        f"as in /var/log/**/*.log {_GLOB_HINT}"
                    )
                i += 1 if i < len(chars) else 0
        elif c == "[":
            if i + 4 <= len(chars) and chars[i + 1] == "!":
                close = chars.find("]", i + 3)
                if close >= 0:
                    i = close + 1
                    continue
            elif i + 3 <= len(chars) and chars[i + 1] != "!":
                close = chars.find("]", i + 2)
                if close >= 0:
                    i = close + 1
                    continue
            return f"has a [ … ] group that is not closed properly {_GLOB_HINT}"
        else:
            i += 1
    return None


def _path_components(path: str) -> list[str]:
    """Rust ``Path::iter`` of an absolute path, root left out: no empty or ``.`` components."""
    return [part for part in path.split("/") if part not in ("", ".")]


def file_include_problem(pattern: str) -> str | None:
    """The whole pattern and each component must compile (``glob::glob_with``)."""
    for part in (pattern, *pattern[1:].split("/")):
        problem = glob_problem(part)
        if problem:
            return problem
    return None


def file_exclude_problem(pattern: str) -> str | None:
    """The pattern as rebuilt from its path components must compile."""
    return glob_problem("/" + "/".join(_path_components(pattern)))


def http_name_pattern_problem(name: str) -> str | None:
    """A header or query parameter name: exact, or a glob when it contains ``*``."""
    return glob_problem(name) if "*" in name else None


def kafka_topic_problem(topic: str) -> str | None:
    """A Kafka topic name, or a regular expression of the portable subset starting with ``^``."""
    if not topic.startswith("^"):
        if _TOPIC_NAME.fullmatch(topic) and topic not in (".", ".."):
            return None
        return (
            "must be a Kafka topic name (letters, digits, '.', '_' and '-', at most 249) "
            "or a regular expression starting with '^'"
        )
    body, position = topic[1:], 0
    while position < len(body):
        token = _REGEX_TOKEN.match(body, position)
        if token is None or (token.group() == "$" and token.end() != len(body)):
            return (
                f"is a regular expression with {body[position]!r} at position {position + 1}, "
                "outside the portable POSIX subset librdkafka is given (topic characters, "
                "\\-escaped punctuation, '.', [...], (...), '|', '*', '+', '?', {m,n}, final '$')"
            )
        position = token.end()
    if any(bad in topic for bad in ("()", "(|", "|)", "||", "^|")) or topic.endswith("|"):
        return "is a regular expression with an empty group or alternative"
    for interval in re.finditer(r"\{([0-9]+)(?:,([0-9]*))?\}", topic):
        low, high = int(interval.group(1)), interval.group(2)
        if low > 255 or (high and not low <= int(high) <= 255):
            return "is a regular expression with an interval outside 0 to 255"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python's "possible nested set" is a warning
        try:
            re.compile(topic)
        except (re.error, FutureWarning) as exc:
            return f"is not a valid regular expression ({exc})"
    return None


def duplicates_problem(values: list[str]) -> str | None:
    """librdkafka refuses a subscription that names one topic twice."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return f"lists {value!r} twice"
        seen.add(value)
    return None
