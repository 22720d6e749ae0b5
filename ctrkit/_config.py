"""Typed filling of small configs from YAML: unknown keys and wrong types are one-line errors."""

from __future__ import annotations

from typing import Any

from ctrkit.errors import ConfigError


def coerce(where: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of ``default`` (lists become tuples, ints may stand for floats)."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def fill(defaults: dict[str, Any], values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check ``values`` against ``defaults`` (names and types); returns the checked values only."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of names to values, got {values!r}")
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ConfigError(f"{where} has no setting {unknown[0]!r}; known: {', '.join(defaults)}")
    return {k: coerce(f"{where}: {k!r}", v, defaults[k]) for k, v in values.items()}
