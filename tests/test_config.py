import dataclasses

import pytest
import yaml

from supernet.runtime.cli import command
from supernet.runtime.config import ConfigError, from_dict, load_config, parse_overrides, parse_value, to_dict


@dataclasses.dataclass
class Inner:
    steps: int = 10
    metric: str = "probability"


@dataclasses.dataclass
class Cfg:
    RERUN_FREE_KEYS = ("workers",)
    lr: float = 0.1
    epochs: int = 3
    amp: str = "bf16"
    strategy: list[str] = dataclasses.field(default_factory=lambda: ["random"])
    image_size: int | None = None
    download: bool = False
    workers: int = 2
    inner: Inner = dataclasses.field(default_factory=Inner)
    options: dict = dataclasses.field(default_factory=dict)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_yaml_then_overrides_and_written_config(tmp_path):
    cfg_file = write(tmp_path / "c.yaml", "lr: 1e-3\nepochs: 5\namp: off\n")
    cfg, out = load_config(Cfg, ["epochs=7", "--config", cfg_file, "--out", str(tmp_path / "run"),
                                 "strategy=[random,evo_nas]", "image_size=32", "download=true"])
    assert cfg == Cfg(lr=0.001, epochs=7, amp="off", strategy=["random", "evo_nas"], image_size=32, download=True)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved == to_dict(cfg)
    assert from_dict(Cfg, saved) == cfg


def test_values_are_yaml_scalars_and_lists():
    assert parse_value("1e-4") == 1e-4 and parse_value("3") == 3 and parse_value("off") == "off"
    assert parse_value("[a, 2]") == ["a", 2] and parse_value("") is None and parse_value("false") is False


@pytest.mark.parametrize("where", ["yaml", "override"])
def test_unknown_key_names_it_and_the_closest_valid_key(tmp_path, where):
    argv = ["--out", str(tmp_path / "run")]
    if where == "yaml":
        argv += ["--config", write(tmp_path / "c.yaml", "lr: 0.1\nepoch: 3\n")]
    else:
        argv += ["epoch=3"]
    with pytest.raises(ConfigError, match=r"unknown config key 'epoch'.*did you mean 'epochs'"):
        load_config(Cfg, argv)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, message", [("epochs=2.5", "epochs must be int"),
                                               ("lr=fast", "lr must be float"),
                                               ("image_size=[1]", "image_size must be int"),
                                               ("lr", "must look like key=value"),
                                               ("strategy=[a", "cannot read the value '\\[a'")])
def test_bad_values_are_clear_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Cfg, ["--out", str(tmp_path), override])


def test_missing_config_file_and_missing_out(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(Cfg, ["--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        load_config(Cfg, ["lr=0.1"])
    assert e.value.code == 2 and "--out" in capsys.readouterr().err


def test_rerun_with_other_settings_is_refused_except_free_keys(tmp_path):
    out = str(tmp_path / "run")
    load_config(Cfg, ["--out", out, "lr=0.5"])
    (tmp_path / "run" / "metrics.jsonl").touch()   # the run started
    with pytest.raises(ConfigError, match=r"lr: 0.5 -> 0.1"):
        load_config(Cfg, ["--out", out])
    cfg, _ = load_config(Cfg, ["--out", out, "lr=0.5", "workers=0"])
    assert cfg.workers == 0


def test_command_prints_user_errors_as_one_line(tmp_path, capsys):
    @command
    def main(argv=None):
        load_config(Cfg, argv)

    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), "lrr=1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: unknown config key 'lrr' in the command-line overrides; did you mean 'lr'?\n"


def test_a_dotted_override_sets_one_key_of_a_nested_setting_over_the_file(tmp_path):
    cfg_file = write(tmp_path / "c.yaml", "inner: {steps: 3}\noptions: {size: 4, rate: 0.5}\n")
    cfg, out = load_config(Cfg, ["--config", cfg_file, "--out", str(tmp_path / "run"), "inner.metric=accuracy",
                                 "options.size=8"])
    assert cfg.inner == Inner(steps=3, metric="accuracy") and cfg.options == {"size": 8, "rate": 0.5}
    assert yaml.safe_load((out / "config.yaml").read_text())["inner"] == {"steps": 3, "metric": "accuracy"}
    assert parse_overrides(["a.b.c=1", "a.b.d=x", "e=[1, 2]"]) == {"a": {"b": {"c": 1, "d": "x"}}, "e": [1, 2]}
    # a whole mapping replaces the file's: options={} clears them
    cfg, _ = load_config(Cfg, ["--config", cfg_file, "--out", str(tmp_path / "other"), "options={}", "inner={steps: 5}"])
    assert cfg.options == {} and cfg.inner == Inner(steps=5)
    # a dotted key after a whole mapping sets one key of it
    cfg, _ = load_config(Cfg, ["--config", cfg_file, "--out", str(tmp_path / "third"), "options={size: 1}", "options.rate=2"])
    assert cfg.options == {"size": 1, "rate": 2}


@pytest.mark.parametrize("argv, message", [
    (["inner.step=3"], r"unknown config key 'inner.step' in the command-line overrides; did you mean 'inner.steps'"),
    (["inner.steps=many"], "inner.steps must be int, got 'many'"),
    (["inner=3"], "inner must be a mapping of its keys, got 3"),
    (["options=3"], "options must be a mapping of key: value, got 3"),
    (["inner=3", "inner.steps=2"], "sets a key inside 'inner', which another override sets whole"),
    (["inner..steps=2"], "must look like key=value"),
])
def test_a_bad_nested_setting_is_a_clear_error(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Cfg, ["--out", str(tmp_path / "run"), *argv])


def test_help_lists_every_key_with_its_default_the_nested_ones_dotted(capsys):
    with pytest.raises(SystemExit):
        load_config(Cfg, ["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "lr=0.1" in shown and "inner.steps=10" in shown and "inner.metric='probability'" in shown
