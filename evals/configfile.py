"""Config files: YAML, then ``--set key=value`` overrides, validated by a pydantic model.

Precedence: defaults < YAML < ``--set``. Every problem is reported together, each on its own
line, and an unknown key names the nearest valid one. The CLI validates the whole
``roitune.yaml`` (``optimizer.config.Config``); the dashboard reads the same file for the parts
it needs (economics, storage, study) with its own model, without importing the optimizer.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Problems in a config file or in --set flags, one per line."""


def _fields_at(model: type[BaseModel], location: tuple) -> list[str]:
    """Valid keys of the (nested) model at ``location``."""
    for part in location:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _printable(text: str) -> str:
    """User text quoted in a message, with line breaks and control characters escaped: every
    problem stays on its own line."""
    return text if text.isprintable() else repr(text)[1:-1]


def _describe(model: type[BaseModel], error: dict) -> str:
    location = tuple(error["loc"])
    key = _printable(".".join(str(part) for part in location))
    if error["type"] == "extra_forbidden":
        valid = _fields_at(model, location[:-1])
        near = difflib.get_close_matches(str(location[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean '{'.'.join([*map(str, location[:-1]), near[0]])}'?" if near else \
            f"valid keys here: {', '.join(valid)}"
        return f"{key}: unknown key; {hint}"
    return f"{key}: {error['msg']}"


def _set_dotted(raw: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def parse_overrides(flags: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """``key=value`` flags, values parsed as YAML (numbers, lists, booleans)."""
    pairs, problems = [], []
    for flag in flags:
        key, sep, text = flag.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {_printable(flag)}: expected key=value")
            continue
        try:
            pairs.append((key.strip(), yaml.safe_load(text) if text.strip() else ""))
        except yaml.YAMLError as err:
            problems.append(f"--set {_printable(flag)}: bad value ({str(err).splitlines()[0]})")
        except RecursionError:
            problems.append(f"--set {_printable(flag)}: bad value (nested too deeply)")
    return pairs, problems


def read_config(path: str | Path | None, overrides: list[str] | None, model: type[M], *,
                prepare: Callable[[dict[str, Any], Path, list[tuple[str, Any]]], None] | None = None) -> M:
    """Read the YAML at ``path``, apply ``key=value`` overrides, validate as ``model``; raise
    ConfigError listing every problem. ``prepare(raw, config_folder, overrides)`` may adjust
    the merged mapping first (the CLI resolves relative data paths there)."""
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file (write one with `roitune init`)")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            reason = getattr(err, "problem", None) or str(err).splitlines()[0]  # one line: each is a problem
            raise ConfigError(f"{where}: invalid YAML ({reason})") from err
        except RecursionError:
            raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys at the top level")
        raw = loaded or {}
        base = path.resolve().parent
    pairs, problems = parse_overrides(overrides or [])
    for key, value in pairs:
        _set_dotted(raw, key, value)
    if prepare is not None:
        prepare(raw, base, pairs)
    try:
        config = model.model_validate(raw)
    except ValidationError as err:
        where = f"{path}: " if path else ""
        problems += [where + _describe(model, e) for e in err.errors()]
        config = None
    if problems:
        raise ConfigError("\n".join(problems))
    return config
