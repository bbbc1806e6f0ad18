"""Checks for JSON records read from files that anyone may have written (sidecars, GeoJSON).

A record's schema is a tree of small checks, each ``check(value, where) -> value``: the type, the
range and the nesting of every field, and for records whether a key is required or unknown. A
value that does not fit raises :class:`SchemaError` with the key path (``parity.passed``) and
what was expected; :func:`validate` turns it into the one-line :class:`~sam2ms.errors.UsageError`
that names the file and the fix. JSON itself is read through :func:`load_json`, which bounds the
file's size and refuses what Python's parser would otherwise accept outside JSON (NaN, Infinity)
or crash on (nesting deeper than the recursion limit, integers of thousands of digits).

numpy-free and torch-free: deployment hosts import this.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from .errors import UsageError

Check = Callable[[Any, str], Any]

MAX_STRING = 1 << 16  # characters in any one string field
MAX_ITEMS = 1 << 20  # entries in any one list
MAX_DEPTH = 32  # nesting of free-form records


class SchemaError(Exception):
    """A value at ``where`` (a key path) that is not what the schema expects."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where or 'the document'}: {problem}")
        self.where = where


def describe(value: Any) -> str:
    """A value as an error message shows it: its JSON type and a short repr."""
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text[:40]}{'…' if len(text) > 40 else ''}" if value is not None else "null"


def _fail(where: str, expected: str, value: Any) -> NoReturn:
    raise SchemaError(where, f"expected {expected}, got {describe(value)}")


def key(where: str, name: str | int) -> str:
    """The path of a child: ``parity`` + ``passed`` -> ``parity.passed``; list items ``[3]``."""
    if isinstance(name, int):
        return f"{where}[{name}]"
    return f"{where}.{name}" if where else name


def string(choices: tuple[str, ...] | None = None, pattern: str | None = None, max_len: int = MAX_STRING) -> Check:
    """A string (one of ``choices``, or matching ``pattern`` in full)."""
    regex = re.compile(pattern) if pattern else None
    expected = (
        f"one of {', '.join(map(repr, choices))}"
        if choices
        else f"a string matching {pattern}"
        if pattern
        else "a string"
    )

    def check(value: Any, where: str) -> str:
        if (
            not isinstance(value, str)
            or len(value) > max_len
            or (choices and value not in choices)
            or (regex and not regex.fullmatch(value))
        ):
            _fail(where, expected, value)
        return value

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """An integer (JSON booleans are not integers here) in [lo, hi]."""
    expected = "an integer" + (f" >= {lo}" if lo is not None else "") + (f" <= {hi}" if hi is not None else "")

    def check(value: Any, where: str) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            _fail(where, expected, value)
        return value

    return check


def number(lo: float | None = None, hi: float | None = None) -> Check:
    """A finite number in [lo, hi]."""
    expected = "a finite number" + (f" >= {lo:g}" if lo is not None else "") + (f" <= {hi:g}" if hi is not None else "")

    def check(value: Any, where: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            _fail(where, expected, value)
        return value

    return check


def boolean() -> Check:
    """``true`` or ``false`` (not the string "false", not 0)."""

    def check(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            _fail(where, "true or false", value)
        return value

    return check


def const(expected_value: Any) -> Check:
    """A check that the value is exactly ``expected_value`` (same type too)."""

    def check(value: Any, where: str) -> Any:
        if type(value) is not type(expected_value) or value != expected_value:
            _fail(where, repr(expected_value), value)
        return value

    return check


def optional(inner: Check) -> Check:
    """``inner`` or null."""

    def check(value: Any, where: str) -> Any:
        return None if value is None else inner(value, where)

    return check


def either(*options: Check, expected: str) -> Check:
    """The first of ``options`` that accepts the value."""

    def check(value: Any, where: str) -> Any:
        for option in options:
            try:
                return option(value, where)
            except SchemaError:
                continue
        _fail(where, expected, value)

    return check


def list_of(item: Check, min_len: int = 0, max_len: int = MAX_ITEMS) -> Check:
    """A check that the value is a list of ``min_len`` to ``max_len`` items, each passing ``item``."""

    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            size = f"{min_len}" if min_len == max_len else f"{min_len} to {max_len}"
            _fail(where, f"a list of {size} items", value)
        return [item(v, key(where, i)) for i, v in enumerate(value)]

    return check


def record(fields: Mapping[str, Check], required: tuple[str, ...] = (), other: Check | None = None) -> Check:
    """An object with the keys of ``fields`` (those in ``required`` must be there); a key not in
    ``fields`` is checked by ``other``, or refused when ``other`` is None.
    """

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            _fail(where, "an object", value)
        for name in required:
            if name not in value:
                raise SchemaError(key(where, name), "missing (a required key)")
        out = {}
        for name, v in value.items():
            inner = fields.get(name, other)
            if inner is None:
                raise SchemaError(key(where, name), f"unknown key (known: {', '.join(fields)})")
            out[name] = inner(v, key(where, name))
        return out

    return check


def json_value(depth: int = MAX_DEPTH) -> Check:
    """Any JSON value nested at most ``depth`` deep: free-form records (report figures) that no
    reader acts on.
    """

    def check(value: Any, where: str, level: int = 0) -> Any:
        if level > depth:
            _fail(where, f"at most {depth} levels of nesting", value)
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return number()(value, where)
        if isinstance(value, list):
            return [check(v, key(where, i), level + 1) for i, v in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: check(v, key(where, k), level + 1) for k, v in value.items()}
        _fail(where, "a JSON value", value)

    return check


#: A lowercase hex SHA-256.
SHA256 = string(pattern="[0-9a-f]{64}")


def file_name() -> Check:
    """A plain file name: no folder part, not ``.``/``..``, no NUL. Names read from a file are
    joined to that file's own folder, so they can never reach outside it.
    """

    def check(value: Any, where: str) -> str:
        if (
            not isinstance(value, str)
            or not value
            or value in (".", "..")
            or any(c in value for c in "/\\\0")
            or len(value) > 255
        ):
            _fail(where, "a plain file name in the same folder (no '/', '..' or absolute path)", value)
        return value

    return check


def validate(value: Any, schema: Check, source: str, fix: str) -> Any:
    """``value`` checked by ``schema``; a :class:`~sam2ms.errors.UsageError` that starts with
    ``source`` (the file) and ends with ``fix`` otherwise.
    """
    try:
        return schema(value, "")
    except SchemaError as exc:
        raise UsageError(f"{source}: {exc}; {fix}") from None


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def load_json(path: str | Path, what: str, fix: str, max_bytes: int) -> Any:
    """The JSON document in ``path``, read only when it is at most ``max_bytes`` long; NaN and
    Infinity (which Python's parser takes) are refused like any other syntax error.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UsageError(f"{what}: {size} bytes, more than the {max_bytes} this file may have; {fix}")
        return json.loads(path.read_bytes(), parse_constant=_no_constants)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: syntax, NaN, an int of > 4300 digits
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise UsageError(f"{what}: unreadable ({reason[:200]}); {fix}") from None
