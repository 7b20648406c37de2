"""The last stage of a discrete search: its best candidates scored again, more carefully.

The best of a few hundred noisy scores is mostly the one whose noise was kindest (the winner's
curse: on the ranking benchmark the search's best scored above every ground-truth cell and
retrained to the middle of them, README "How well shared weights rank"). So the `rescore_top`
best accepted candidates are scored again with a longer fine-tuning (`rescore_finetune_steps`),
a better short-training proxy that the search cannot afford for every candidate, and the search
answers the best of them by that score.
"""
from __future__ import annotations

from supernet.genotype import Genotype


def top_candidates(history: list[dict], count: int) -> list[dict]:
    """The `count` accepted records of the highest reward, each genotype once, best first
    (ties: the earlier evaluation)."""
    accepted = sorted((r for r in history if r["rejected"] is None), key=lambda r: (-r["reward"], r["evaluation"]))
    seen, top = set(), []
    for rec in accepted:
        genotype = Genotype.from_dict(rec["genotype"])
        if genotype not in seen:
            seen.add(genotype)
            top.append(rec)
    return top[:count]


def rescore(history: list[dict], evaluator, count: int) -> list[dict]:
    """{evaluation, reward, rescore} of the `count` best candidates of `history`, scored by
    `evaluator` (the longer fine-tuning), highest rescore first (ties: the higher reward)."""
    top = top_candidates(history, count)
    records = evaluator.evaluate([Genotype.from_dict(r["genotype"]) for r in top])
    rescored = [{"evaluation": r["evaluation"], "reward": r["reward"], "rescore": new["score"]}
                for r, new in zip(top, records)]
    return sorted(rescored, key=lambda r: (-r["rescore"], -r["reward"], r["evaluation"]))
