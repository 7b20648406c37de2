"""What the fixed networks of both cell conventions share: the classifier head, the auxiliary
head, the drop-path rate and the `forward_features` / `forward_head` split (as timm's models)."""
from __future__ import annotations

from torch import nn

from .genotype import Genotype
from .layout import AuxiliaryHead


class FixedNetwork(nn.Module):
    """A genotype's network. Subclasses build `stem` and `cells` and implement `forward_features`,
    which returns the last cell's output and the auxiliary logits (None outside training)."""

    def __init__(self, genotype: Genotype, drop_path: float):
        super().__init__()
        self.genotype = genotype
        self.drop_path = drop_path

    def _build_head(self, num_features: int, aux_features: int, num_classes: int, auxiliary: bool):
        self.aux_head = AuxiliaryHead(aux_features, num_classes) if auxiliary else None
        self.num_features = num_features
        self.classifier = nn.Linear(num_features, num_classes)

    def forward_features(self, x):
        raise NotImplementedError

    def forward_head(self, x):
        return self.classifier(x.mean((2, 3)))

    def forward(self, x):
        features, aux = self.forward_features(x)
        logits = self.forward_head(features)
        return (logits, aux) if aux is not None else logits
