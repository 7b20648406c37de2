"""Run configuration: one dataclass per command, read from YAML plus `key=value` overrides.

    cfg, out = load_config(TrainConfig, ["--config", "configs/digits_supernet.yaml", "--out", "runs/a", "lr=0.1"])

A field may itself be a dataclass (a supernet's `scoring`) or a mapping (a search's `strategy_options`):
YAML gives it as a mapping and an override sets one of its keys with a dotted key
(`scoring.finetune_steps=0`). Keys are checked strictly (a typo is an error naming the key and the
closest valid one), values are checked against the field types, and the resolved
config is written to `out/config.yaml`. Re-running on a run directory whose
config differs (other than in the class's `RERUN_FREE_KEYS`) is an error, so a
resumed run always continues the run it claims to; a directory holding nothing
but its config.yaml (a run that failed while setting up) takes the new config.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path

import yaml

from ..errors import MissingFileError, UserError
from .distributed import is_main_process
from .files import write_atomic
from .lock import hold_run_dir

CONFIG_FILE = "config.yaml"


class ConfigError(UserError):
    """A config that names an unknown key, has a value of the wrong type, or does not fit the run dir."""


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans and floats: only true/false are booleans (`amp: off` stays the
    string 'off'), and `1e-4` is a float (YAML 1.1 wants `1.0e-4`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool",
                                                                      "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def parse_value(text: str):
    """A `key=value` override's value as a YAML scalar or list (`[a,b]` -> ['a', 'b'], `` -> None)."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot read the value {text!r}: {str(e).splitlines()[0]}") from None


class _Dotted(dict):
    """The keys that dotted overrides set inside a mapping: merged into it, where a whole mapping replaces it."""


def parse_overrides(items) -> dict:
    """`key=value` items as a mapping of values; a dotted key (`scoring.metric=accuracy`) sets one key of a
    nested mapping, where `key={...}` gives the whole mapping (and a dotted key after it, one key of that)."""
    values: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        path = key.split(".")
        if not sep or not all(path):
            raise ConfigError(f"override {item!r} must look like key=value")
        node = values
        for part in path[:-1]:   # into the mapping an earlier override gave whole, or the dotted keys' own
            node = node.setdefault(part, _Dotted())
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a key inside {part!r}, which another override sets whole")
        node[path[-1]] = parse_value(text)
    return values


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied: the keys of a dotted override's mapping (parse_overrides) one by
    one into the mapping `base` holds there, any other value in place of `base`'s."""
    out = dict(base)
    for key, value in overrides.items():
        inside = isinstance(value, _Dotted) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if inside else dict(value) if isinstance(value, _Dotted) else value
    return out


def _closest(key: str, valid, prefix: str = "") -> str:
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {prefix + match[0]!r}?" if match else ""


def _coerce(key: str, value, tp, source: str):
    """`value` checked (and int -> float widened) against the annotation `tp`; a mapping given for a
    dataclass becomes one (from_dict)."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of its keys, got {value!r}")
        return from_dict(tp, value, source, prefix=f"{key}.")
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of key: value, got {value!r}")
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (list, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce(f"{key}[{i}]", v, args[0], source) for i, v in enumerate(items)] if args else list(items)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
    return value


def check_keys(cls, values: dict, source: str, prefix: str = ""):
    """Raise ConfigError naming the first key of `values` (found in `source`) that is not a field of `cls`,
    or of the dataclass a field holds."""
    names, hints = [f.name for f in dataclasses.fields(cls)], typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown config key {prefix + str(key)!r} in {source}{_closest(str(key), names, prefix)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            check_keys(hints[key], value, source, f"{prefix}{key}.")


def from_dict(cls, values: dict, source: str = "the config", prefix: str = ""):
    """An instance of the config dataclass `cls` from `values`; unknown keys and bad types raise ConfigError."""
    check_keys(cls, values, source, prefix)
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(prefix + key, value, hints[key], source) for key, value in values.items()})


def to_dict(cfg) -> dict:
    """The config as a plain dict (YAML- and checkpoint-safe)."""
    return dataclasses.asdict(cfg)


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise MissingFileError(f"config file {path} does not exist")
    try:
        values = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of key: value lines")
    return values


def _defaults(cls, prefix: str = ""):
    """`key=default` of every field of `cls` that has a default, a dataclass field's keys dotted."""
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _defaults(type(default), f"{prefix}{f.name}.")
        elif default is not dataclasses.MISSING:
            yield f"{prefix}{f.name}={default!r}"


def load_config(cls, argv=None, description: str | None = None):
    """Parse `[--config FILE.yaml] --out DIR [key=value ...]` into (`cls` instance, run dir Path):
    build_config of the file's values and the overrides."""
    parser = argparse.ArgumentParser(description=description,
                                     epilog="config keys (default): " + ", ".join(_defaults(cls)))
    parser.add_argument("--config", type=Path, help="YAML file of key: value settings")
    parser.add_argument("--out", type=Path, required=True, help="run directory (created; re-run to resume)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that override the file")
    args = parser.parse_intermixed_args(argv)
    values = read_yaml(args.config) if args.config else {}
    return build_config(cls, values, parse_overrides(args.overrides), args.out, str(args.config)), args.out


def build_config(cls, values: dict, overrides: dict, out: Path, source: str = "the config file"):
    """The `cls` instance of `values` (a config file's, read from `source`) with `overrides` applied
    (dataclass defaults < file < overrides), for the run directory `out`. Rank 0 of a torchrun job (or
    the single process) holds `out` for the rest of the command (supernet.runtime.lock) and writes
    `out/config.yaml`; every rank checks it against an existing one."""
    check_keys(cls, values, source)
    check_keys(cls, overrides, "the command-line overrides")
    cfg = from_dict(cls, merged(values, overrides))
    main_process = is_main_process()
    if main_process:
        hold_run_dir(out)
    _check_run_dir(cfg, out)
    if main_process:
        save_config(cfg, out)
    return cfg


def _check_run_dir(cfg, out: Path):
    saved_path = out / CONFIG_FILE
    if not saved_path.is_file() or not any(p.name != CONFIG_FILE for p in out.iterdir()):
        return   # no run there, or one that failed before writing anything but its config: nothing to continue
    saved = read_yaml(saved_path)
    free = getattr(cfg, "RERUN_FREE_KEYS", ())
    changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in to_dict(cfg).items()
               if k not in free and saved.get(k) != v]
    if changed:
        raise ConfigError(f"{out} holds a run with other settings ({'; '.join(changed)}); "
                          "re-run with its settings to resume, or pick a new --out")


def save_config(cfg, out: Path) -> Path:
    """Write `out/config.yaml` atomically (unless it already says the same) and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path, text = out / CONFIG_FILE, yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text)
    return path
