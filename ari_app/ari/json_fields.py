"""Total accessors for ARI's JSON: each returns a default instead of raising.

A missing or mistyped field gives "", 0 or {}, which is what lets `parse_event` promise
never to raise (Asterisk versions differ in what they send).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JsonDict = Mapping[str, Any]


def json_dict(data: object, key: str) -> JsonDict:
    """The object at `key`; {} when absent or not an object."""
    if isinstance(data, Mapping):
        value = data.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def json_str(data: JsonDict, key: str) -> str:
    """The string (or number, as text) at `key`; "" otherwise."""
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def json_int(data: JsonDict, key: str) -> int:
    """The integer (or bool, float, numeric text) at `key`; 0 otherwise."""
    value = data.get(key)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return 0
    return 0
