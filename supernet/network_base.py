"""What the fixed networks of both cell conventions share: timm's model contract.

`forward_features` (the last cell's output, unpooled), `forward_head(x, pre_logits)`, the classifier
(`get_classifier`, `reset_classifier(num_classes, global_pool)`, `num_features`, `head_hidden_size`),
`feature_info` with one level per resolution and `forward_intermediates` (so that timm's
`features_only=True` gives the stage feature maps), the auxiliary head, and the drop-path rate.
A network built without an auxiliary head (as every timm model is) scripts with TorchScript.
"""
from __future__ import annotations

import torch
from timm.layers import SelectAdaptivePool2d, drop_path
from timm.models._features import feature_take_indices
from torch import nn

from .backbone import AuxiliaryHead, CellSpec
from .genotype import Genotype


class FixedNetwork(nn.Module):
    """A genotype's network. Subclasses build `stem` and `cells` and implement `_features(x, levels)`,
    which returns the last cell's output and the auxiliary logits (None outside training), and
    appends every feature level to `levels` when one is given."""

    def __init__(self, genotype: Genotype, drop_path: float):
        super().__init__()
        self.genotype = genotype
        self.drop_path = drop_path

    def _build(self, genotype: Genotype, plan: list[CellSpec], channels: tuple, make_cell, num_classes: int,
               auxiliary: bool, stem_features: list[dict], stem_reduction: int, keeps_older=lambda spec: False):
        """The cells of `plan` (`make_cell(pairs, concat, C_pp, C_p, spec)`; the cell after one for which
        `keeps_older(spec)` reads the state before that one), the feature levels (one where the
        resolution is about to halve, and at the end, after `stem_features`) and the heads."""
        (C_pp, C_p), reduction = channels, stem_reduction
        self.cells, self.level_cells, features = nn.ModuleList(), [], list(stem_features)
        for i, spec in enumerate(plan):
            pairs, concat = genotype.cell(spec.reduction)
            self.cells.append(make_cell(pairs, concat, C_pp, C_p, spec))
            C_pp, C_p = (C_pp if keeps_older(spec) else C_p), len(concat) * spec.C
            reduction *= 2 if spec.reduction else 1
            if i == self.aux_index:
                C_aux = C_p
            if i + 1 == len(plan) or plan[i + 1].reduction:
                self.level_cells.append(i)
                features.append(level(C_p, reduction, f"cells.{i}"))
        self.aux_head = AuxiliaryHead(C_aux, num_classes) if auxiliary else None
        self.num_features = self.head_hidden_size = C_p
        self.feature_info = features
        self.reset_classifier(num_classes, "avg")

    # -- the classifier ---------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None):
        """A new classifier of `num_classes` (0: none, the pooled features come out); `global_pool`
        "avg", or "" for none (with no classifier, the unpooled features come out)."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    # -- forward --------------------------------------------------------------------------------
    def _features(self, x, levels: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward_features(self, x):
        return self._features(x)[0]

    def forward_head(self, x, pre_logits: bool = False):
        x = self.global_pool(x)
        return x if pre_logits else self.classifier(x)

    def forward(self, x):
        """The logits; while training with an auxiliary head, (logits, auxiliary logits)."""
        if self.aux_head is not None and self.training:
            features, aux = self._features(x)
            assert aux is not None
            return self.forward_head(features), aux
        return self.forward_head(self.forward_features(x))

    # -- feature maps ---------------------------------------------------------------------------
    def forward_intermediates(self, x, indices=None, norm: bool = False, stop_early: bool = False,
                              output_fmt: str = "NCHW", intermediates_only: bool = False):
        """The feature maps of the levels `indices` (timm's convention: None for all, n for the last n)
        and, unless `intermediates_only`, the final features."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be NCHW, got {output_fmt!r}")
        take, _ = feature_take_indices(len(self.feature_info), indices)
        levels: list[torch.Tensor] = []
        final, _ = self._features(x, levels)
        intermediates = [levels[i] for i in take]
        return intermediates if intermediates_only else (final, intermediates)

    def prune_intermediate_layers(self, indices=1, prune_norm: bool = False, prune_head: bool = True) -> list[int]:
        """The levels `indices` stand for; the head goes when `prune_head` (timm's features_only wrapper)."""
        take, _ = feature_take_indices(len(self.feature_info), indices)
        if prune_head:
            self.reset_classifier(0, "")
        return take


def dropped(y: torch.Tensor, drop_prob: float, training: bool, droppable: bool) -> torch.Tensor:
    """An op's output under drop-path (cells drop whole samples of an op's output while training)."""
    return drop_path(y, drop_prob, True) if drop_prob > 0 and training and droppable else y


def level(num_chs: int, reduction: int, module: str) -> dict:
    """One entry of `feature_info`."""
    return {"num_chs": num_chs, "reduction": reduction, "module": module}
