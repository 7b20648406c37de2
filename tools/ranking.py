"""How well a supernet's shared-weight scores rank cells, against the standalone accuracy of cells
trained from scratch (a ground-truth file, see tools/ground_truth.py), beside cheap baselines.

    python tools/ranking.py --supernet RUN [--supernet RUN ...] --ground-truth FILE [--ground-truth FILE ...] \
        [key=value ...] --json OUT [--against EARLIER_OUT]
    python tools/ranking.py --scores EARLIER_OUT [--scores EARLIER_OUT ...] --ground-truth FILE ... --json OUT

FILE is a JSON list, or JSON lines, of objects with `genotype` (its JSON form) and `accuracy`; several
files are ranked as one pool of genotypes (each at most once), and `by_ground_truth` gives the rank
figures (and each baseline's tau) over each file's genotypes alone: a held-out sample of cells beside
those a recipe was chosen on, say. Where
objects also hold `accuracies` of several seeds ({"0": a, "1": b, ...}), the seed-to-seed Kendall tau
of standalone training (the mean over pairs of seeds) is reported as the ceiling. Every genotype is scored as nas-search scores a
candidate (supernet.scoring: the subnet inherits the supernet's weights, is fine-tuned for a few
steps, its BN statistics are recalibrated, its score measured), on the supernet run's validation
split unless key=value overrides (RankingSettings) choose other data or scoring: dataset, data_dir,
image_size, split (val | test), batch_size, eval_batches, the keys of supernet.scoring.Scoring as
`scoring.KEY=VALUE` (scoring.finetune_steps=0: the shared weights alone), untrained=true the
supernet at initialisation (the from-scratch control), draw=N fine-tunes and calibrates on the
first batches of training epoch N instead of 0 (another draw of the scoring's own noise). OUT holds kendall_tau (with
kendall_tau_95, its 95% bootstrap interval over the genotypes), spearman, top_quarter_precision of
the scores, accuracy_ratio (mean shared-weight / mean standalone accuracy, whatever the metric
ranked), count, the per-genotype scores and accuracies, and
the same rank figures for the baselines of search.proxies (parameter count, the cells' concatenated
states, gradient norm and synflow at initialisation), which a supernet must beat to be worth its
training: each with `tau_gap`, the supernet's tau minus the baseline's, and `tau_gap_95`, its 95%
interval over the same bootstrap draws of the genotypes (the supernet beats the baseline where it
lies above 0), and `equal_width`, the Kendall tau over only the pairs of genotypes whose cells
concatenate as many states (`pairs` of them): the order that `concat_width`, the baseline short
fine-tuning leans on most, cannot give; and `width_lean`, the Kendall tau between the scores and
`concat_width` (to set against that baseline's own tau, width against standalone accuracy: a
search follows the scores' lean). `--against EARLIER` (an OUT of this tool: another supernet, scoring, or the
untrained control) adds `against`, the same paired difference from that ranking (and in its
`equal_width`, that over the pairs of equal width). With several
runs (one shape, trained with other seeds, say; each supernet of a run of several, its `runs`,
counts as one, named by its directory) a genotype's score is the mean of theirs, `runs`
holds the figures of each, and `agreement` the mean Kendall tau between their scores: how far a
supernet's ranking repeats when it is trained again. `--scores EARLIER` in place of `--supernet`
scores nothing: it ranks the scores (each run's) of an earlier OUT against these ground-truth files,
an updated one say, in seconds; repeated, the runs of every file count as `--supernet`'s several runs.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy.stats import spearmanr

from search.cli import supernet_settings
from search.config import scoring_of
from search.constraints import SizeTable
from search.predictor import Predictor
from search.proxies import PROXIES, proxy_scores
from supernet.genotype import Genotype
from supernet.network import build_network
from supernet.runtime.checkpoint import load_supernets, supernet_dirs
from supernet.runtime.cli import command
from supernet.runtime.config import ConfigError, from_dict, parse_overrides
from supernet.runtime.data import make_loaders, set_epoch, take_batches
from supernet.runtime.files import write_json
from supernet.runtime.precision import uses_channels_last
from supernet.scoring import Scoring, score_metrics
from supernet.space import get_space


@dataclass
class PredictorSettings:
    """The predictor of --predictor (search.predictor) and the random cells it learns from."""
    model: str = "gp"
    seed: int = 0
    label_seed: int = 1                  # the random cells' draw (none of them a ground-truth cell)


@dataclass
class RankingSettings:
    """The data the genotypes are scored on (None: the supernet run's own) and how (supernet.scoring)."""
    dataset: str | None = None
    data_dir: str | None = None
    image_size: int | None = None
    split: Literal["val", "test"] = "val"
    batch_size: int = 64
    eval_batches: int | None = None      # None: the whole split
    scoring: dict = field(default_factory=dict)   # supernet.scoring.Scoring keys; unset: the supernet run's
    untrained: bool = False              # the supernet at initialisation (seed 0): with finetune_steps, the
    #                                      from-scratch control that the trained weights must beat
    draw: int = 0                        # the training epoch whose first batches fine-tune and calibrate: another
    #                                      draw of their order and augmentation, to measure the scoring's own noise
    predictor: PredictorSettings = field(default_factory=PredictorSettings)   # with --predictor


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scores = p.add_mutually_exclusive_group(required=True)
    scores.add_argument("--supernet", action="append",
                   help="supernet-train run directory; repeated (runs of one shape, trained with other seeds, say): "
                        "each genotype is scored by the mean of their scores, and their agreement reported")
    scores.add_argument("--scores", type=Path, action="append",
                        help="an earlier OUT instead of supernets: its scores (each run's) ranked against these ground "
                             "truths, nothing scored again; repeated: their runs' scores averaged as --supernet's")
    p.add_argument("--ground-truth", type=Path, required=True, action="append",
                   help="JSON list or JSON lines of {genotype, accuracy}; repeated: their genotypes pooled")
    p.add_argument("--json", type=Path, required=True, help="file to write the results to")
    p.add_argument("--against", type=Path, help="an earlier OUT (another supernet, scoring or the untrained control): "
                                                "the difference of the two taus, paired over the genotypes")
    p.add_argument("--predictor", type=int, action="append", metavar="N",
                   help="also rank by a predictor fitted to N random cells (none a ground-truth cell) scored on the "
                        "supernets as the cells are; repeated, one predictor per N, on the first N of the largest draw")
    p.add_argument("--labels", type=Path, help="with --predictor: the random cells an earlier OUT scored, instead of "
                                               "scoring them here (needed with --scores)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="the scoring data and method (see RankingSettings)")
    args = p.parse_args(argv)
    values = parse_overrides(args.overrides)
    settings = from_dict(RankingSettings, values, "the command-line overrides")
    from_dict(Scoring, settings.scoring, "the command-line overrides", prefix="scoring.")
    if args.scores and set(values) - {"predictor"}:
        raise ConfigError("--scores ranks scores already made: key=value overrides, which say how to score, have no "
                          "place (but for predictor.KEY)")
    Predictor(get_space("nasnet"), settings.predictor.model)   # an unknown model: one line now, not after the scoring
    if any(n < 10 for n in args.predictor or ()):
        raise ConfigError(f"--predictor needs 10 cells at least to fit and cross-validate, got {min(args.predictor)}")
    if args.predictor and args.scores and not args.labels:
        raise ConfigError("--scores scores nothing: give the random cells of --predictor with --labels EARLIER_OUT")
    if settings.draw < 0:
        raise ConfigError(f"draw must be a training epoch (0 or more), got {settings.draw}")
    return args, settings


def read_ground_truth(path: Path) -> list[dict]:
    text = path.read_text().strip()
    records = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    for r in records:
        if "genotype" not in r or "accuracy" not in r:
            raise ConfigError(f"{path}: every record needs `genotype` and `accuracy`, got keys {sorted(r)}")
    return records


def pooled_ground_truth(paths: list[Path]) -> tuple[list[dict], list[int]]:
    """The records of every file, and the index of the file each came from; a genotype twice is an
    error (it would count as two cells)."""
    records, sources, seen = [], [], {}
    for k, path in enumerate(paths):
        for r in read_ground_truth(path):
            key = genotype_key(r["genotype"])
            if key in seen:
                raise ConfigError(f"{path}: genotype {r.get('name', '')!r} is already in {seen[key]}; "
                                  "rank each cell once")
            seen[key] = path
            records.append(r)
            sources.append(k)
    return records, sources


def by_file(paths: list[Path], sources: list[int], scores, truth, baselines: dict) -> list[dict] | None:
    """The rank figures over each ground-truth file's genotypes alone, where several are pooled, with
    the Kendall tau of each baseline there."""
    if len(paths) < 2:
        return None
    sources = np.asarray(sources)
    def part(values, k):
        return np.asarray(values, dtype=float)[sources == k]
    return [{"file": str(path), "count": int(np.sum(sources == k)), **rank_figures(part(scores, k), part(truth, k)),
             "baselines": {name: kendall(part(values, k), part(truth, k)) for name, values in baselines.items()}}
            for k, path in enumerate(paths)]


def bootstrap_95(statistic, count: int, draws: int = 1000, seed: int = 0) -> list[float]:
    """The 95% bootstrap interval of statistic(indices) over `count` genotypes drawn with replacement:
    how far another sample of cells of the same space could move the figure."""
    rng = np.random.default_rng(seed)
    values = [statistic(k) for k in rng.integers(count, size=(draws, count))]
    return [float(v) for v in np.nanpercentile(values, [2.5, 97.5])]


def kendall(scores, truth, groups=None) -> float:
    """Kendall tau-b of `scores` against `truth` over the pairs of genotypes in one group (of equal
    width, say: the order that width cannot give); with no groups, over every pair. NaN where no
    such pair is ordered by both."""
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    i, j = np.triu_indices(len(truth), 1)
    if groups is not None:
        same = np.asarray(groups)[i] == np.asarray(groups)[j]
        i, j = i[same], j[same]
    by_score, by_truth = np.sign(scores[i] - scores[j]), np.sign(truth[i] - truth[j])
    ordered = math.sqrt(np.count_nonzero(by_score) * np.count_nonzero(by_truth))
    return float(by_score @ by_truth / ordered) if ordered else math.nan


def on_draw(groups, k):
    return None if groups is None else np.asarray(groups)[k]


def tau_interval(scores, truth, groups=None) -> list[float]:
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    return bootstrap_95(lambda k: kendall(scores[k], truth[k], on_draw(groups, k)), len(truth))


def tau_gap(scores, other, truth, groups=None) -> dict:
    """Kendall tau of `scores` minus that of `other` against the same `truth` (over the pairs within
    `groups`, see kendall), with the 95% bootstrap interval of that difference, both taken on each
    draw of the genotypes: the paired comparison, far tighter than the two taus' own intervals where
    both score sets err on the same cells. `scores` may hold several score sets (rows, say
    supernets of several training seeds): the mean of their taus then stands for it."""
    scores, other, truth = (np.asarray(v, dtype=float) for v in (scores, other, truth))
    score_sets = np.atleast_2d(scores)
    def gap(k):
        g = on_draw(groups, k)
        return np.mean([kendall(s[k], truth[k], g) for s in score_sets]) - kendall(other[k], truth[k], g)
    return {"tau_gap": float(gap(slice(None))), "tau_gap_95": bootstrap_95(gap, len(truth))}


def equal_width(scores, truth, widths) -> dict:
    """Kendall tau (and its bootstrap interval) over the pairs of genotypes of equal width only."""
    widths = np.asarray(widths)
    pairs = int(sum(math.comb(int(n), 2) for n in np.unique(widths, return_counts=True)[1]))
    return {"pairs": pairs, "kendall_tau": kendall(scores, truth, widths),
            "kendall_tau_95": tau_interval(scores, truth, widths)}


def rank_figures(scores, truth) -> dict:
    """Kendall tau (and its bootstrap interval), Spearman rho and the precision of the top quarter of
    `scores` against `truth`."""
    quarter = max(1, math.ceil(len(truth) / 4))
    top_truth, top_score = set(np.argsort(truth)[-quarter:]), set(np.argsort(scores)[-quarter:])
    return {"kendall_tau": kendall(scores, truth), "kendall_tau_95": tau_interval(scores, truth),
            "spearman": float(spearmanr(scores, truth)[0]), "top_quarter_precision": len(top_truth & top_score) / quarter}


def seed_ceiling(records: list[dict]) -> dict | None:
    """Kendall tau between two seeds of standalone training: for every pair of seeds that at least 3
    cells were trained with, over those cells (`pairs`), and its mean over the pairs."""
    seeds = sorted({s for r in records for s in r.get("accuracies", {})}, key=int)
    pairs = {}
    for s, t in itertools.combinations(seeds, 2):
        both = [r["accuracies"] for r in records if {s, t} <= set(r.get("accuracies", {}))]
        if len(both) >= 3:
            pairs[f"{s}-{t}"] = kendall([a[s] for a in both], [a[t] for a in both])
    if not pairs:
        return None
    return {"count": sum(len(r.get("accuracies", {})) >= 2 for r in records),
            "kendall_tau": float(np.mean(list(pairs.values()))), "pairs": pairs}


def genotype_key(genotype: dict) -> str:
    return json.dumps(genotype, sort_keys=True)


def read_output(path: Path, option: str) -> dict[str, tuple[float, float, float]]:
    """Genotype key -> (shared-weight score, standalone accuracy, concat width) of a tools/ranking.py
    output, named by `option` in the error where the file is none."""
    try:
        return {genotype_key(g["genotype"]): (float(g["shared_weight"]), float(g["standalone"]), float(g["concat_width"]))
                for g in json.loads(path.read_text())["genotypes"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{option} {path}: not a tools/ranking.py output ({e})") from None


def read_earlier(path: Path, records: list[dict]) -> dict[int, float]:
    """Ground-truth record index -> its score in an earlier tools/ranking.py output, for the genotypes
    both hold; read and checked before the long scoring starts."""
    scores = read_output(path, "--against")
    earlier = {k: scores[key][0] for k, r in enumerate(records) if (key := genotype_key(r["genotype"])) in scores}
    if len(earlier) < 3:
        raise ConfigError(f"--against {path}: it scored {len(earlier)} of these genotypes; a comparison needs 3")
    return earlier


def compare_with(path: Path, earlier: dict[int, float], shared: list[float], truth: list[float],
                 widths: list[float]) -> dict:
    """This ranking against an earlier one (another supernet, scoring or control), paired over the
    genotypes both scored, over all their pairs and over those of equal width."""
    other, mine, common_truth = list(earlier.values()), [shared[k] for k in earlier], [truth[k] for k in earlier]
    common_widths = [widths[k] for k in earlier]
    return {"file": str(path), "count": len(earlier), "kendall_tau": kendall(other, common_truth),
            **tau_gap(mine, other, common_truth),
            "equal_width": {"kendall_tau": kendall(other, common_truth, common_widths),
                            **tau_gap(mine, other, common_truth, common_widths)}}


def load_runs(runs: list[str], untrained: bool) -> tuple[list[str], list]:
    """The supernets of `runs` (a run of several gives each, named by its directory) and their
    names; they must share their shape (the first one's data scores them all). With `untrained`, each
    run's at initialisation (seed 0) instead."""
    names, supernets = [], []
    for run in runs:
        settings = supernet_settings(run)
        nets = load_supernets(run, settings, untrained=untrained)
        names += [str(run)] if len(nets) == 1 else [str(where) for where in supernet_dirs(run, settings)]
        supernets += [net.eval() for net in nets]
    if any(net.spec != supernets[0].spec for net in supernets):
        raise ConfigError(f"the supernets {', '.join(runs)} differ in shape; rank one shape at a time")
    return names, supernets


def agreement(scores_by_run: list[list[float]]) -> float | None:
    """Mean Kendall tau between the scores of every two supernets: how far a supernet's ranking
    repeats when it is trained again, the ceiling of its own figures."""
    pairs = list(itertools.combinations(scores_by_run, 2))
    return float(np.mean([kendall(a, b) for a, b in pairs])) if pairs else None


@dataclass
class Scorer:
    """Supernets, their scoring and its fixed batches: what scores a genotype here."""
    names: list[str]
    supernets: list
    train: list
    validation: list
    scoring: Scoring
    channels_last: bool
    image_size: int

    def score(self, genotypes, label=lambda k: "") -> tuple[list[list[float]], list[list[float]]]:
        """Each genotype's score and accuracy on each supernet (rows: supernets), with a progress line each."""
        by_run, accuracy_by_run = [], []
        for run, supernet in zip(self.names, self.supernets):
            by_run.append([])
            accuracy_by_run.append([])
            for k, g in enumerate(genotypes):
                figures = score_metrics(supernet, g, self.train, self.validation, self.scoring,
                                        channels_last=self.channels_last)
                by_run[-1].append(figures[self.scoring.metric])
                accuracy_by_run[-1].append(figures["accuracy"])
                print(f"{run} {k + 1}/{len(genotypes)} {label(k)}: shared-weight {self.scoring.metric} "
                      f"{by_run[-1][-1]:.4f}", flush=True)
        return by_run, accuracy_by_run


def make_scorer(args, settings) -> Scorer:
    """The supernets of `args.supernet`, scored as `settings` say (supernet.scoring)."""
    trained = supernet_settings(args.supernet[0])
    scoring = scoring_of(trained, settings.scoring)
    names, supernets = load_runs(args.supernet, settings.untrained)
    data = make_loaders(settings.dataset or trained["dataset"], settings.data_dir or trained["data_dir"],
                        settings.batch_size, image_size=settings.image_size or trained["image_size"],
                        val_fraction=trained["val_fraction"], workers=0)
    set_epoch(data.train, settings.draw)
    channels_last = uses_channels_last(trained.get("channels_last"), "cpu")
    train = take_batches(data.train, scoring.train_batches, "cpu", channels_last)
    validation = take_batches(getattr(data, settings.split), settings.eval_batches, "cpu", channels_last)
    if not validation:
        raise ConfigError(f"the supernet run's data has no {settings.split} split to score on")
    return Scorer(names, supernets, train, validation, scoring, channels_last, data.image_size)


def score_supernets(scorer: Scorer, settings, records: list[dict]) -> dict:
    """Every genotype scored on each supernet of `scorer`, with the baselines."""
    spec = scorer.supernets[0].spec
    genotypes = [Genotype.from_dict(r["genotype"]) for r in records]
    x, y = scorer.train[0]
    proxies = [proxy_scores(lambda g=g: build_network(g, spec.C, spec.layers, spec.num_classes, stem=spec.stem,
                                                      in_channels=spec.in_channels), x, y) for g in genotypes]
    by_run, accuracy_by_run = scorer.score(genotypes, lambda k: f"{records[k].get('name', '')} (standalone "
                                                                f"{records[k]['accuracy']:.4f})")
    return {"runs": scorer.names, "by_run": by_run, "accuracy_by_run": accuracy_by_run,
            "proxies": proxies, "settings": asdict(settings), "scoring": asdict(scorer.scoring),
            "scored_images": sum(len(y) for _, y in scorer.validation)}


def stored_scores(paths: list[Path], records: list[dict]) -> dict:
    """What score_supernets returns, read from earlier outputs of this tool instead (their runs in
    turn): the same scores ranked against another ground truth (an updated one, say) in seconds.
    Every file must have scored every genotype, the same way."""
    runs, by_run, accuracy_by_run, first = [], [], [], None
    for path in paths:
        try:
            out = json.loads(path.read_text())
            by_key = {genotype_key(g["genotype"]): g for g in out["genotypes"]}
            names = [r["supernet"] for r in out["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"--scores {path}: not a tools/ranking.py output ({e})") from None
        missing = [r.get("name", "") for r in records if genotype_key(r["genotype"]) not in by_key]
        if missing:
            raise ConfigError(f"--scores {path}: it did not score {len(missing)} of these genotypes ({missing[0]!r} ...)")
        if first and out["scoring"] != first["scoring"]:
            raise ConfigError(f"--scores {path}: scored otherwise than {paths[0]} ({out['scoring']} against "
                              f"{first['scoring']}); rank one scoring at a time")
        stored = [by_key[genotype_key(r["genotype"])] for r in records]
        if any(len(g.get("shared_weight_accuracies", ())) != len(names) for g in stored):
            raise ConfigError(f"--scores {path}: it lacks each run's accuracies (an older output): score it again")
        runs += names
        by_run += [[g["shared_weights"][k] for g in stored] for k in range(len(names))]
        accuracy_by_run += [[g["shared_weight_accuracies"][k] for g in stored] for k in range(len(names))]
        first = first or {**out, "genotypes": stored}
    return {"runs": runs, "by_run": by_run, "accuracy_by_run": accuracy_by_run,
            "proxies": [{name: g[name] for name in PROXIES} for g in first["genotypes"]],
            **{key: first[key] for key in ("settings", "scoring", "scored_images")}}


def random_cells(space, count: int, exclude: set[str], seed: int) -> list:
    """`count` distinct random genotypes of `space`, none of whose keys is in `exclude`."""
    if count > math.prod(d.num_choices for d in space.decisions) - len(exclude):
        raise ConfigError(f"--predictor {count}: the {space.name} space holds fewer other cells")
    rng, cells, seen = np.random.default_rng(seed), [], set(exclude)
    while len(cells) < count:
        g = space.sample(rng)
        if genotype_key(g.to_dict()) not in seen:
            seen.add(genotype_key(g.to_dict()))
            cells.append(g)
    return cells


def predictor_labels(args, settings, scorer: Scorer | None, records: list[dict]) -> dict:
    """The random cells the predictors learn from and their scores: scored here, or read from the --labels
    output (which must hold enough of them, none a ground-truth cell)."""
    count = max(args.predictor)
    if args.labels:
        try:
            stored = json.loads(args.labels.read_text()).get("predictor") or {"labels": []}
        except (OSError, ValueError) as e:
            raise ConfigError(f"--labels {args.labels}: not a tools/ranking.py output ({e})") from None
        if len(stored["labels"]) < count:
            raise ConfigError(f"--labels {args.labels}: it holds {len(stored['labels'])} scored random cells, fewer "
                              f"than --predictor {count}")
        truth = {genotype_key(r["genotype"]) for r in records}
        if any(genotype_key(r["genotype"]) in truth for r in stored["labels"][:count]):
            raise ConfigError(f"--labels {args.labels}: some of its random cells are ground-truth cells here")
        return {**stored, "labels": stored["labels"][:count]}
    spec = scorer.supernets[0].spec
    cells = random_cells(scorer.supernets[0].space, count, {genotype_key(r["genotype"]) for r in records},
                         settings.predictor.label_seed)
    start, cpu = time.perf_counter(), time.process_time()
    by_run, _ = scorer.score(cells, lambda k: "random cell")
    return {"seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "shape": {"C": spec.C, "layers": spec.layers, "num_classes": spec.num_classes,
                      "image_size": scorer.image_size, "in_channels": spec.in_channels, "stem": spec.stem},
            "labels": [{"genotype": g.to_dict(), "shared_weights": list(s), "shared_weight": float(np.mean(s))}
                       for g, s in zip(cells, zip(*by_run))]}


def predictor_figures(args, settings, labels: dict, records: list[dict], shared, truth, widths) -> list[dict]:
    """For each N of --predictor: the ranking of the ground-truth cells by a predictor fitted to the first
    N labels, against the scores it learned from (paired), and its cross-validated fit."""
    space, sizes = get_space("nasnet"), SizeTable(**labels["shape"])
    cells = [Genotype.from_dict(r["genotype"]) for r in labels["labels"]]
    scores = [r["shared_weight"] for r in labels["labels"]]
    ground_truth = [Genotype.from_dict(r["genotype"]) for r in records]
    figures = []
    for n in sorted(set(args.predictor)):
        start = time.perf_counter()
        predictor = Predictor(space, settings.predictor.model, settings.predictor.seed, sizes).fit(cells[:n], scores[:n])
        predicted = predictor.predict(ground_truth)[0].tolist()
        figures.append({"cells": n, "model": settings.predictor.model, **rank_figures(predicted, truth),
                        "equal_width": equal_width(predicted, truth, widths), "against_scores": tau_gap(predicted, shared, truth),
                        "cross_validated_tau": predictor.cross_validated_tau(),
                        "fit_seconds": round(time.perf_counter() - start, 2), "predicted": predicted})
    return figures


@command
def main(argv=None):
    args, settings = parse_args(argv)
    start = time.perf_counter()
    records, sources = pooled_ground_truth(args.ground_truth)
    earlier = read_earlier(args.against, records) if args.against else None
    scorer = None if args.scores else make_scorer(args, settings)
    scored = stored_scores(args.scores, records) if args.scores else score_supernets(scorer, settings, records)
    labels = predictor_labels(args, settings, scorer, records) if args.predictor else None
    truth = [float(r["accuracy"]) for r in records]
    by_run, accuracy_by_run, proxies = scored["by_run"], scored["accuracy_by_run"], scored["proxies"]
    shared, accuracy = np.mean(by_run, axis=0).tolist(), np.mean(accuracy_by_run, axis=0).tolist()
    baselines = {name: [p[name] for p in proxies] for name in proxies[0]}
    widths = baselines["concat_width"]
    result = {
        **rank_figures(shared, truth), "equal_width": equal_width(shared, truth, widths),
        "width_lean": kendall(shared, widths), "count": len(records),
        "by_ground_truth": by_file(args.ground_truth, sources, shared, truth, baselines),
        "accuracy_ratio": float(np.mean(accuracy) / np.mean(truth)),
        "shared_weight_accuracy_mean": float(np.mean(accuracy)), "standalone_accuracy_mean": float(np.mean(truth)),
        "baselines": {name: {**rank_figures(scores, truth), **tau_gap(shared, scores, truth)}
                      for name, scores in baselines.items()},
        "against": compare_with(args.against, earlier, shared, truth, widths) if earlier else None,
        "ceiling": seed_ceiling(records), "agreement": agreement(by_run),
        "runs": [{"supernet": run, **rank_figures(run_scores, truth), "accuracy_ratio": float(np.mean(acc) / np.mean(truth))}
                 for run, run_scores, acc in zip(scored["runs"], by_run, accuracy_by_run)],
        "ground_truth": [str(path) for path in args.ground_truth], "scores_from": [str(p) for p in args.scores or []],
        **{key: scored[key] for key in ("settings", "scoring", "scored_images")},
        "genotypes": [{"name": r.get("name"), "genotype": r["genotype"], "standalone": t, "shared_weight": s,
                       "shared_weights": list(run_scores), "shared_weight_accuracy": a,
                       "shared_weight_accuracies": list(run_accuracies), **p}
                      for r, t, s, run_scores, a, run_accuracies, p
                      in zip(records, truth, shared, zip(*by_run), accuracy, zip(*accuracy_by_run), proxies)],
        "predictor": labels and {**labels, "by_cells": predictor_figures(args, settings, labels, records, shared,
                                                                          truth, widths)},
        "wall_time_s": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads(),
    }
    write_json(args.json, result)
    print(json.dumps({k: result[k] for k in ("kendall_tau", "kendall_tau_95", "spearman", "top_quarter_precision",
                                              "equal_width", "width_lean", "accuracy_ratio", "count", "ceiling",
                                              "agreement", "by_ground_truth")}))
    print(json.dumps({name: [figures["kendall_tau"], figures["tau_gap_95"]] for name, figures in result["baselines"].items()}))
    if result["against"]:
        print(json.dumps(result["against"]))
    for figures in (result["predictor"] or {}).get("by_cells", []):
        print(json.dumps({key: figures[key] for key in ("cells", "model", "kendall_tau", "kendall_tau_95",
                                                        "top_quarter_precision", "against_scores",
                                                        "cross_validated_tau")}))


if __name__ == "__main__":
    main()
