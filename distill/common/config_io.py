"""YAML recipes (safe loader: a config never runs code) and `key=value` overrides onto nested config dataclasses.

Each value given is checked against its field's annotation by pydantic in strict mode (no `"5"` for an int),
field by field, keeping our unknown-key check, key paths and `__post_init__`s. An int given for a float stays
an int, so resolved configs keep their fingerprints. A refusal is one line: `augment.rules.mask.p: -1 must be >= 0`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import AfterValidator, Field

from distill.errors import UserError

_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class ConfigError(UserError, ValueError):
    """A bad config: one line, `<key.path>: <problem>` when the key is known."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key, self.problem = key, message

    def under(self, prefix: str) -> ConfigError:
        """The same error seen from the enclosing section (`prefix` ends with a dot, e.g. `augment.`)."""
        return ConfigError(self.problem, prefix + self.key if self.key else prefix.rstrip(".")) if prefix else self


# --- constraints, used as field annotations --------------------------------------------------
def _check_device(value: str) -> str:
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        return value
    raise ValueError("is not auto, cpu, cuda, cuda:N or mps")


PositiveInt = Annotated[int, Field(ge=1)]  # counts and sizes that must be at least 1
NonNegativeInt = Annotated[int, Field(ge=0)]  # counts where 0 means "none" or "default"
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy seeds are 32-bit, non-negative
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Device = Annotated[str, AfterValidator(_check_device)]  # torch device: auto picks cuda when available


# --- YAML --------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("+-.0123456789"))


def _yaml_error(source: str, err: yaml.YAMLError, with_line: bool = True) -> ConfigError:
    mark = getattr(err, "problem_mark", None) if with_line else None
    where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else source
    reason = ": ".join(filter(None, (getattr(err, "context", None), getattr(err, "problem", None) or str(err))))
    if isinstance(err, yaml.constructor.ConstructorError):
        reason += " (only plain YAML is read: tags that build Python objects are refused)"
    return ConfigError(f"{where}: invalid YAML: {' '.join(reason.split())}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Loader) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except yaml.YAMLError as err:
        raise _yaml_error(str(path), err) from None
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
    if not all(parts):
        raise ConfigError(f"override {item!r}: {key.strip()!r} is not a dotted key")
    target = data
    for part in parts[:-1]:
        if isinstance(target.get(part), list):  # rules: [mask, pos] -> {mask: {}, pos: {}}
            if not all(isinstance(name, str) for name in target[part]):
                raise ConfigError(f"override {item!r}: {part} is a list, not a section (set the whole list)")
            target[part] = {name: {} for name in target[part]}
        if target.get(part) is None:  # an empty section (`tang:`) or a new one
            target[part] = {}
        target = target[part]
        if not isinstance(target, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    try:
        value = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as err:
        raise _yaml_error(f"override {item!r}", err, with_line=False) from None
    target[parts[-1]] = float(value) if isinstance(value, str) and _FLOAT.fullmatch(value.strip()) else value


# --- validation --------------------------------------------------------------------------------
def build_config(cls, data: dict[str, Any] | None, prefix: str = ""):
    """Dataclass `cls` from a mapping: unknown keys refused, every value validated, nested sections
    (fields whose default factory is a dataclass) built recursively. Errors name `prefix` + key."""
    data = {} if data is None else data  # None: an empty section, `tang:` with nothing under it
    if not isinstance(data, dict):
        raise ConfigError(f"{_show(data)} is not a mapping", prefix.rstrip(".") or None)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    if unknown := set(data) - set(fields):
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + str(k) for k in sorted(unknown, key=str))}")
    nested = {name: sub for name in data if dataclasses.is_dataclass(sub := fields[name].default_factory)}
    kwargs = {name: build_config(sub, data[name], f"{prefix}{name}.") for name, sub in nested.items()}
    kwargs.update(validate_fields(cls, {k: v for k, v in data.items() if k not in nested}, prefix))
    return construct(cls, kwargs, prefix)


def construct(cls, kwargs: dict[str, Any], prefix: str = ""):
    """`cls(**kwargs)`, its `__post_init__` errors turned into a `ConfigError` under `prefix`."""
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(prefix) from None
    except (TypeError, ValueError) as err:
        raise ConfigError(" ".join(str(err).split())).under(prefix) from None


def validate_fields(cls, data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`data` checked against the field annotations of dataclass `cls`: the values to construct with (those
    given, or what a field's own validator made of them, e.g. rule names turned into a mapping)."""
    out = {}
    for name, value in data.items():
        try:
            validated = _adapter(cls, name).validate_python(value, strict=True)
        except pydantic.ValidationError as err:
            raise _one_line(err, f"{prefix}{name}") from None
        # strict mode widens an int to a float only: keep the int given (same resolved config as before)
        widened = isinstance(value, int) and not isinstance(value, bool) and isinstance(validated, float)
        out[name] = value if widened else validated
    return out


@functools.cache
def _adapter(cls, name: str) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(typing.get_type_hints(cls, include_extras=True).get(name, Any))


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NOT_A = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean (true or false)",
          "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
          "finite_number": "a finite number"}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _one_line(err: pydantic.ValidationError, key: str) -> ConfigError:
    """pydantic's error as `<key.path>: <value> <what is allowed>`."""
    # of a union's alternatives, the error that got furthest into the value says most (`layers[1]`)
    error = max(err.errors(include_url=False), key=lambda e: len(e["loc"]))
    # drop pydantic's union-member tags from the path (`literal['spread','first']`, `list[int]`, `constrained-int`)
    loc = [part for part in error["loc"] if not (isinstance(part, str) and (("[" in part and part != "[key]")
                                                                           or part.startswith("constrained-")))]
    is_key = loc[-1:] == ["[key]"]  # a mapping's key, not its value
    if is_key:
        loc[-2:] = [str(loc[-2])]
    path = key + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    kind, ctx = error["type"], error.get("ctx") or {}
    value = ("key " if is_key else "") + _show(error.get("input"))
    if kind in _NOT_A:
        problem = f"{value} is not {_NOT_A[kind]}"
        if kind == "string_type" and isinstance(error.get("input"), (int, float)):
            problem += " (quote it: YAML read a number or boolean)"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        problem = f"{value} must be {_BOUNDS[kind]} {bound}"
    elif kind == "literal_error":
        problem = f"{value} is not allowed (choose {ctx['expected']})"
    elif kind == "string_too_short":
        problem = f"{value} must not be empty"
    elif kind == "value_error" and "error" in ctx:
        problem = f"{value} {ctx['error']}"
    else:
        problem = f"{value} is not valid ({error['msg']})"
    return ConfigError(" ".join(problem.split()), path)


class YamlConfig:
    """Mixin for a stage's config dataclass: `from_dict(data)`, `load(yaml_path, overrides)`, and the
    annotations' checks for a config built in Python too (a subclass's `__post_init__` calls this first)."""

    from_dict = classmethod(build_config)
    load = classmethod(load_config)

    def __post_init__(self) -> None:
        plain = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, os.PathLike):  # a Path given in Python: kept as its string
                setattr(self, f.name, value := os.fspath(value))
            if f.init and not dataclasses.is_dataclass(value):
                plain[f.name] = value
        validate_fields(type(self), plain)
