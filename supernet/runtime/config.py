"""Run configuration: one dataclass per command, read from YAML plus `key=value` overrides.

    cfg, out = load_config(TrainConfig, ["--config", "configs/digits_supernet.yaml", "--out", "runs/a", "lr=0.1"])

Keys are checked strictly (a typo is an error naming the key and the closest
valid one), values are checked against the field types, and the resolved
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


def _closest(key: str, valid) -> str:
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def _coerce(key: str, value, tp):
    """`value` checked (and int -> float widened) against the annotation `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (list, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(items)] if args else list(items)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
    return value


def check_keys(cls, keys, source: str):
    """Raise ConfigError naming the first of `keys` that is not a field of `cls` (found in `source`)."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in keys:
        if key not in names:
            raise ConfigError(f"unknown config key {key!r} in {source}{_closest(str(key), names)}")


def from_dict(cls, values: dict, source: str = "the config"):
    """An instance of the config dataclass `cls` from `values`; unknown keys and bad types raise ConfigError."""
    check_keys(cls, values, source)
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(key, value, hints[key]) for key, value in values.items()})


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


def _keys_help(cls) -> str:
    return "config keys (default): " + ", ".join(
        f"{f.name}={f.default!r}" for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)


def load_config(cls, argv=None, description: str | None = None):
    """Parse `[--config FILE.yaml] --out DIR [key=value ...]` into (`cls` instance, run dir Path).

    Precedence: dataclass defaults < YAML file < overrides. Rank 0 of a torchrun job (or the single
    process) holds DIR for the rest of the command (supernet.runtime.lock) and writes `DIR/config.yaml`;
    every rank checks it against an existing one.
    """
    parser = argparse.ArgumentParser(description=description, epilog=_keys_help(cls))
    parser.add_argument("--config", type=Path, help="YAML file of key: value settings")
    parser.add_argument("--out", type=Path, required=True, help="run directory (created; re-run to resume)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that override the file")
    args = parser.parse_intermixed_args(argv)
    values = read_yaml(args.config) if args.config else {}
    check_keys(cls, values, str(args.config))
    overrides = {}
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value")
        overrides[key] = parse_value(text)
    check_keys(cls, overrides, "the command-line overrides")
    cfg = from_dict(cls, {**values, **overrides})
    main_process = is_main_process()
    if main_process:
        hold_run_dir(args.out)
    _check_run_dir(cfg, args.out)
    if main_process:
        save_config(cfg, args.out)
    return cfg, args.out


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
