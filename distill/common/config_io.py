"""YAML recipes and `key=value` overrides onto nested config dataclasses, shared by every stage.

YAML is read with `yaml.safe_load` only: a config never executes code.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class ConfigError(ValueError):
    pass


def read_yaml(path: str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping")
    return data


def load_config(cls, path: str | Path | None = None, overrides: list[str] | None = None):
    """Build dataclass `cls` from a YAML file (optional) plus `key=value` overrides applied on top."""
    data = read_yaml(path) if path else {}
    for item in overrides or []:
        apply_override(data, item)
    return build_config(cls, data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """`tang.n_iter=10` → data["tang"]["n_iter"] = 10 (value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"override {item!r} is not key=value")
    parts = key.strip().split(".")
    target = data
    for part in parts[:-1]:
        if isinstance(target.get(part), list):  # rules: [mask, pos] -> {mask: {}, pos: {}}
            target[part] = {name: {} for name in target[part]}
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    target[parts[-1]] = _parse_value(raw)


def _parse_value(raw: str) -> Any:
    """YAML scalar, except that `1e-4` is a float (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def build_config(cls, data: dict[str, Any], prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[name] = build_config(sub, value, f"{prefix}{name}.")
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(str(err)) from None


class YamlConfig:
    """Mixin for a stage's config dataclass: `from_dict(data)` and `load(yaml_path, overrides)`."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return build_config(cls, data)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None):
        return load_config(cls, path, overrides)
