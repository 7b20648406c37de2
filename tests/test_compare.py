"""nas-search with a list of strategies: one full search each, and a comparison consistent with them."""
import json

import pytest
import yaml

from search.cli import main
from supernet.train import main as train_main

# a small darts-space supernet, 1 epoch of 16 steps on digits
TINY_SUPERNET = ["space=darts", "C=4", "layers=3", "epochs=1", "batch_size=64", "amp=off", "workers=0",
                 "val_fraction=0.2", "eval_subnets=1", "eval_batches=1"]
SETTINGS = ["budget=8", "ask_size=4", "scoring.calibration_batches=2", "scoring.finetune_steps=2", "eval_batches=2",
            "workers=0"]
STRATEGIES = ["random", "evo_nas", "gdas"]
OPTIONS = "strategy_options={evo_nas: {population_size: 4, sample_size: 2}, gdas: {epochs: 1}}"


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    train_main(["--out", str(out), *TINY_SUPERNET])
    return out


@pytest.fixture(scope="module")
def compared(supernet, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    main(["--out", str(out), f"supernet={supernet}", f"strategy=[{','.join(STRATEGIES)}]", OPTIONS, *SETTINGS])
    return out


def test_each_strategy_is_a_full_search_of_its_own(compared):
    for name in STRATEGIES:
        config = yaml.safe_load((compared / name / "config.yaml").read_text())
        assert config["strategy"] == name and config["budget"] == 8
        assert config["strategy_options"] == {"random": {}, "evo_nas": {"population_size": 4, "sample_size": 2},
                                              "gdas": {"epochs": 1}}[name]
        assert read(compared / name / "search.json")["strategy"] == name
    assert len(read(compared / "random" / "search.json")["history"]) == 8


def test_a_listed_strategy_finds_what_it_finds_alone(supernet, compared, tmp_path):
    main(["--out", str(tmp_path), f"supernet={supernet}", "strategy=evo_nas",
          "strategy_options={population_size: 4, sample_size: 2}", *SETTINGS])
    alone, listed = read(tmp_path / "search.json"), read(compared / "evo_nas" / "search.json")
    keep = ("genotype", "reward", "round", "cached")
    assert [{k: r[k] for k in keep} for r in alone["history"]] == [{k: r[k] for k in keep} for r in listed["history"]]


def test_comparison_agrees_with_each_search_json(compared):
    comparison = read(compared / "comparison.json")
    assert [e["strategy"] for e in comparison["strategies"]] == STRATEGIES and comparison["budget"] == 8
    for e in comparison["strategies"]:
        own = read(compared / e["search"])
        assert e["reward"] == own["best"]["reward"] and e["genotype"] == own["best"]["genotype"]
        if e["strategy"] == "gdas":
            derived = {json.dumps(h["genotype"], sort_keys=True) for h in own["result"]["history"]}   # one an epoch
            assert e["relaxed"] and e["evaluations"] == own["evaluations"] == len(derived)
            assert e["steps"] == own["steps"] == 16
            assert e["wall_time_s"] == own["wall_time_s"] > own["result"]["wall_time_s"]   # with the scoring
        else:
            assert not e["relaxed"] and e["evaluations"] == own["evaluations"] == 8
            assert e["wall_time_s"] == own["wall_time_s"]
    rewards = [e["reward"] for e in comparison["strategies"]]
    best = comparison["strategies"][rewards.index(max(rewards))]
    assert comparison["best"]["strategy"] == best["strategy"] and comparison["best"]["reward"] == max(rewards)
    assert comparison["best"]["genotype"] == best["genotype"]
    assert comparison["wall_time_s"] == pytest.approx(sum(e["wall_time_s"] for e in comparison["strategies"]))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in (compared / "comparison.md").read_text().splitlines() if line.startswith("| ")}
    for e in comparison["strategies"]:
        kind = "relaxed" if e["relaxed"] else "discrete"
        assert rows[e["strategy"]][:3] == [kind, str(round(e["reward"], 4)), str(e["evaluations"])]
    assert (compared / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_comparison_names_a_genotype_nas_retrain_reads(compared):
    from supernet.genotype import Genotype
    from supernet.genotype_lookup import resolve_genotype

    genotype, _ = resolve_genotype(str(compared / "comparison.json"))
    assert genotype == Genotype.from_dict(read(compared / "comparison.json")["best"]["genotype"])


@pytest.mark.parametrize("overrides, message", [
    (["strategy=[random,random]"], "a list of distinct names"),
    (["strategy=[random,annealing]"], "unknown strategy 'annealing'"),
    (["strategy=[random,gdas]", "strategy_options={evolution: {population_size: 4}}"],
     "strategy_options maps a listed strategy to its options"),
])
def test_a_bad_list_is_one_line(supernet, tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), f"supernet={supernet}", *overrides])
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
