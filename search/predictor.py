"""A performance predictor: a model of a genotype's score, fitted to the scores that a search or a
ranking has measured on the supernet (as Once-for-All, BANANAS and the Neural Predictor of Wen et
al. fit theirs), so that a search can rank thousands of candidates for the cost of one.

    predictor = Predictor(space, sizes=SizeTable(8, 5, 10, 32)).fit(genotypes, scores)
    mean, spread = predictor.predict(candidates)

A genotype's features (`genotype_features`) are its decision encoding (one-hot per decision) and, in
a cell space, what its structure says: per cell type the count of each op, the states the cell
concatenates and its depth; with a SizeTable, the logarithms of its network's parameters and
mult-adds. The model (MODELS) is a Gaussian process, whose posterior spread is the uncertainty that an
acquisition (ACQUISITIONS) trades against the mean, or a random forest, whose trees' spread is. A fit is
a function of its records and seed, so a predictor is stored as those (`to_dict`) and refitted
bit for bit (`from_dict`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import kendalltau, norm

from supernet.errors import UserError
from supernet.genotype import Genotype
from supernet.space import CELL_TYPES, SearchSpace


def _gp(seed: int):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    kernel = ConstantKernel() * RBF(10.0) + WhiteKernel(0.1, noise_level_bounds=(1e-8, 1e2))
    return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)


def _forest(seed: int):
    from sklearn.ensemble import RandomForestRegressor
    return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=0.3, random_state=seed)


# a Gaussian process ranks the benchmark's cells best (docs/search.md); a forest fits many thousands of
# records, where a Gaussian process's cost grows with their cube
MODELS = {"gp": _gp, "forest": _forest}


def upper_confidence(mean, spread, best: float, kappa: float):
    return mean + kappa * spread


def expected_improvement(mean, spread, best: float, kappa: float):
    spread = np.maximum(spread, 1e-12)
    z = (mean - best) / spread
    return (mean - best) * norm.cdf(z) + spread * norm.pdf(z)


def predicted_mean(mean, spread, best: float, kappa: float):
    return mean


ACQUISITIONS = {"ucb": upper_confidence, "ei": expected_improvement, "mean": predicted_mean}


def check_choice(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise UserError(f"unknown {kind} {name!r}; choose one of {', '.join(choices)}")


def cell_depth(pairs, concat) -> int:
    """The longest chain of blocks from the cell's inputs to its output."""
    depth = [0, 0]
    for b in range(len(pairs) // 2):
        depth.append(1 + max(depth[pairs[2 * b][1]], depth[pairs[2 * b + 1][1]]))
    return max(depth[i] for i in concat)


def genotype_features(space, genotypes, sizes=None) -> np.ndarray:
    """One row of features per genotype (see the module docstring)."""
    rows = []
    for g in genotypes:
        seq = space.encode(g)
        row = [float(v == c) for v, d in zip(seq, space.decisions) for c in range(d.num_choices)]
        if isinstance(space, SearchSpace):
            for cell in CELL_TYPES:
                pairs, concat = g.cell(cell == "reduce")
                row += [sum(op == name for name, _ in pairs) for op in space.ops]
                row += [len(concat), cell_depth(pairs, concat)]
            if sizes is not None:
                size = sizes.size(g)
                row += [math.log10(size["params"]), math.log10(size["macs"])]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


class Predictor:
    """A genotype's predicted score and its spread (see the module docstring)."""

    def __init__(self, space, model: str = "gp", seed: int = 0, sizes=None):
        check_choice("predictor model", model, MODELS)
        self.space, self.model, self.seed, self.sizes = space, model, seed, sizes
        self.genotypes: list = []
        self.scores: list[float] = []
        self.regressor = None

    def features(self, genotypes) -> np.ndarray:
        return genotype_features(self.space, genotypes, self.sizes)

    def fit(self, genotypes, scores) -> Predictor:
        """Fit to `scores` (higher is better) of `genotypes`; they become the predictor's records."""
        self.genotypes, self.scores = list(genotypes), [float(s) for s in scores]
        x, y = self.features(self.genotypes), np.asarray(self.scores)
        self.center, self.scale = y.mean(), y.std() or 1.0
        from sklearn.exceptions import ConvergenceWarning
        with warnings.catch_warnings():   # scores without noise drive the Gaussian process's noise to its bound
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.regressor = MODELS[self.model](self.seed).fit(x, (y - self.center) / self.scale)
        return self

    def predict(self, genotypes) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) of the predicted scores of `genotypes`."""
        x = self.features(genotypes)
        if self.model == "forest":   # the spread of its trees
            each = np.stack([tree.predict(x) for tree in self.regressor.estimators_])
            mean, spread = each.mean(0), each.std(0)
        else:   # the posterior's
            mean, spread = self.regressor.predict(x, return_std=True)
        return self.center + self.scale * mean, self.scale * spread

    def acquisition(self, name: str, genotypes, kappa: float = 1.0) -> np.ndarray:
        """The acquisition `name` (ACQUISITIONS) of each of `genotypes`: higher is more worth scoring."""
        check_choice("acquisition", name, ACQUISITIONS)
        mean, spread = self.predict(genotypes)
        return ACQUISITIONS[name](mean, spread, max(self.scores), kappa)

    def cross_validated_tau(self, folds: int = 5) -> float | None:
        """Kendall tau between each record's score and its prediction by a predictor fitted to the
        other folds: how well the predictor ranks cells it has not seen."""
        if len(self.scores) < 2 * folds:
            return None
        order = np.random.default_rng(self.seed).permutation(len(self.scores))
        predicted = np.empty(len(self.scores))
        for k in range(folds):
            held = order[k::folds]
            rest = np.setdiff1d(order, held)
            other = Predictor(self.space, self.model, self.seed, self.sizes)
            other.fit([self.genotypes[i] for i in rest], [self.scores[i] for i in rest])
            predicted[held] = other.predict([self.genotypes[i] for i in held])[0]
        return float(kendalltau(predicted, self.scores)[0])

    def to_dict(self) -> dict:
        """The predictor as plain data: its settings and records (a fit is a function of them)."""
        return {"space": getattr(self.space, "name", None), "model": self.model, "seed": self.seed,
                "records": [{"genotype": _plain(self.space, g), "score": s} for g, s in zip(self.genotypes, self.scores)]}

    @classmethod
    def from_dict(cls, data: dict, space, sizes=None) -> Predictor:
        """The predictor `to_dict` gave, refitted; one of another space is refused in one line."""
        name = getattr(space, "name", None)
        if data.get("space") != name:
            raise UserError(f"the predictor was fitted on the {data.get('space')!r} space; this search is on {name!r}")
        predictor = cls(space, data["model"], data["seed"], sizes)
        records = data["records"]
        return predictor.fit([_from_plain(space, r["genotype"]) for r in records], [r["score"] for r in records])


def _plain(space, genotype):
    return genotype.to_dict() if isinstance(genotype, Genotype) else list(space.encode(genotype))


def _from_plain(space, value):
    return Genotype.from_dict(value) if isinstance(value, dict) else space.decode(value)
