"""One-shot screening, as Once-for-All searches: score many random cells cheaply on the supernet, fit
the predictor to them, let the search's strategy search the predictor alone (thousands of candidates
in seconds), then score the best few it found in full and keep the best of those.

    nas-search --config configs/search_cifar10_5k.yaml --out runs/screened supernet=runs/c5k \\
        screening.cells=300 budget=5000

Each step is a search of its own in the run directory, resumable as any is: `labels/` scores
`screening.cells` random cells with the search's scoring changed by `screening.scoring`; `predicted/`
runs the strategy for `budget` evaluations of the predictor; `rescored/` scores the `screening.rescore`
best distinct candidates of that search with the search's own scoring. `predictor.json` holds the
predictor (its records and settings, from which it refits: search.predictor) and `search.json` the
best re-scored cell, with the screening's figures.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from supernet.errors import MissingFileError
from supernet.genotype import Genotype
from supernet.runtime.config import ConfigError
from supernet.runtime.files import write_json

from .loop import SUMMARY_FILE, run_search
from .predictor import MODELS, Predictor, check_choice
from .random_search import RandomSearch
from .strategy import Strategy

log = logging.getLogger(__name__)

PREDICTOR_FILE = "predictor.json"


@dataclass
class Screening:
    """The settings of a screened search (nas-search's `screening`)."""
    cells: int = 0                       # random cells scored to fit the predictor; 0: no screening
    scoring: dict = field(default_factory=dict)   # their scoring: the search's, with these keys changed
    rescore: int = 10                    # the predictor's best candidates scored again in full
    model: str = "gp"                    # search.predictor.MODELS
    predictor: str | None = None         # the predictor.json of an earlier screening, fitted again instead of cells

    def __post_init__(self):
        check_choice("predictor model", self.model, MODELS)
        if self.cells < 0 or (self.cells and self.cells < 10) or self.rescore < 1:
            raise ConfigError(f"screening needs cells of 0 (off) or 10 and more, and rescore of 1 or more; got "
                              f"{self.cells} and {self.rescore}")

    @property
    def on(self) -> bool:
        return bool(self.cells or self.predictor)


class PredictedEvaluator:
    """The search evaluator's interface over the predictor: a candidate's reward is its predicted score
    (0 where it breaks the size limits, as the evaluator rejects it)."""

    def __init__(self, predictor: Predictor, scoring, constraints=None):
        self.predictor, self.scoring, self.constraints, self.cache = predictor, scoring, constraints, {}

    def evaluate(self, genotypes) -> list[dict]:
        start = time.perf_counter()
        records = []
        for g in genotypes:
            rec = {"score": None, "rejected": None, "params": None, "macs": None}
            if self.constraints is not None:
                rec.update(self.constraints.check(g))
            records.append(rec)
        kept = [g for g, rec in zip(genotypes, records) if rec["rejected"] is None]
        predicted = iter(self.predictor.predict(kept)[0].tolist() if kept else [])
        seconds = round((time.perf_counter() - start) / max(len(genotypes), 1), 6)
        for rec in records:
            rec["score"] = next(predicted) if rec["rejected"] is None else None
            rec.update(reward=rec["score"] if rec["rejected"] is None else 0.0, seconds=seconds, cached=False)
        return records


class Listed(Strategy):
    """Asks the genotypes it is given, in order: the re-scoring as a search of its own."""

    def __init__(self, space, genotypes):
        super().__init__(space, 0)
        self.genotypes, self.asked = list(genotypes), 0

    def ask(self, n: int) -> list:
        self.asked += n
        return self.genotypes[self.asked - n:self.asked]

    def tell(self, genotypes, rewards) -> None:
        pass

    def state_dict(self) -> dict:
        return {**super().state_dict(), "asked": self.asked}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.asked = state["asked"]


def space_size(space) -> int:
    """How many genotypes `space` holds (each decision sequence is one)."""
    return math.prod(d.num_choices for d in space.decisions)


def fitted_predictor(cfg, space, cheap_evaluator, sizes, out: Path, is_main: bool) -> tuple[Predictor, dict]:
    """The predictor of a screened search and how it was made: fitted to `screening.cells` random cells
    scored by `cheap_evaluator` (a random search of its own in out/labels), or to the records of an
    earlier screening's predictor.json."""
    screening = cfg.screening
    if screening.predictor:
        path = Path(screening.predictor)
        if not path.is_file():
            raise MissingFileError(f"screening.predictor {path} does not exist; give the predictor.json of a "
                                   "screened search")
        predictor = Predictor.from_dict(json.loads(path.read_text()), space, sizes)
        return predictor, {"cells": len(predictor.scores), "label_seconds": 0.0, "label_cpu_seconds": 0.0,
                           "from": str(path)}
    if screening.cells > space_size(space):
        raise ConfigError(f"screening.cells {screening.cells} is more than the {space_size(space)} cells the space holds")
    labels = run_search(replace(cfg, strategy="random", strategy_options={}, budget=screening.cells),
                        RandomSearch(space, cfg.seed), cheap_evaluator, out / "labels", is_main)
    accepted = [r for r in labels["history"] if r["rejected"] is None and not r["cached"]]
    predictor = Predictor(space, screening.model, cfg.seed, sizes).fit(
        [Genotype.from_dict(r["genotype"]) for r in accepted], [r["score"] for r in accepted])
    return predictor, {"cells": len(accepted), "label_seconds": labels["wall_time_s"],
                       "label_cpu_seconds": labels["cpu_time_s"]}


def screened_search(cfg, strategy: Strategy, evaluator, cheap_evaluator, sizes, out, is_main: bool) -> dict:
    """The screened search in `out` (see the module docstring); the summary that search.json holds."""
    out, space = Path(out), strategy.space
    predictor, fit = fitted_predictor(cfg, space, cheap_evaluator, sizes, out, is_main)
    fit["cross_validated_tau"] = predictor.cross_validated_tau()
    predicted = run_search(cfg, strategy, PredictedEvaluator(predictor, cheap_evaluator.scoring, evaluator.constraints),
                           out / "predicted", is_main)
    best = sorted({Genotype.from_dict(r["genotype"]): r["reward"] for r in predicted["history"]
                   if r["rejected"] is None}.items(), key=lambda item: -item[1])[:cfg.screening.rescore]
    rescored = run_search(replace(cfg, budget=len(best)), Listed(space, [g for g, _ in best]), evaluator,
                          out / "rescored", is_main)
    wall_time = fit["label_seconds"] + predicted["wall_time_s"] + rescored["wall_time_s"]
    cpu_time = fit["label_cpu_seconds"] + predicted["cpu_time_s"] + rescored["cpu_time_s"]
    summary = {**rescored, "strategy": cfg.strategy, "budget": cfg.budget, "evaluations": predicted["evaluations"],
               "wall_time_s": round(wall_time, 3), "cpu_time_s": round(cpu_time, 3),
               "screening": {**fit, "model": predictor.model, "screened": predicted["evaluations"],
                             "screened_per_s": predicted["evaluations"] / max(predicted["wall_time_s"], 1e-9),
                             "rescored": len(best)}}
    if is_main:
        write_json(out / PREDICTOR_FILE, {**predictor.to_dict(), "cross_validated_tau": fit["cross_validated_tau"]})
        write_json(out / SUMMARY_FILE, summary)
        log.info("screening: the predictor of %d cells ranks its own at tau %s (cross-validated); %d candidates searched "
                 "at %.0f a second; the best of %d re-scored: %s", fit["cells"], fit["cross_validated_tau"],
                 predicted["evaluations"], summary["screening"]["screened_per_s"], len(best),
                 summary["best"] and round(summary["best"]["reward"], 4))
    return summary
