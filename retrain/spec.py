"""What a fixed network is: a genotype and its size settings, and how it is built.

    spec = NetSpec(zoo.get("darts_v2"), C=36, layers=20, num_classes=10, image_size=32)
    net = spec.build(auxiliary=True, drop_path=0.2)

The stem follows the image size, as in supernet training: the ImageNet stem (stride 8,
or the NASNet stem with two reduction cells) above 64 pixels, the CIFAR stem otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from supernet.genotype import Genotype
from supernet.network import CONVENTIONS, build_network
from supernet.network_base import FixedNetwork
from supernet.runtime.config import ConfigError


@dataclass(frozen=True)
class NetSpec:
    genotype: Genotype
    C: int                       # channels of each state in the first stage's cells
    layers: int                  # cells after the stem, the two reduction cells included
    num_classes: int
    image_size: int
    in_channels: int = 3
    convention: str = "darts"
    stem_multiplier: int = 3     # CIFAR stem: C x this; NASNet ImageNet stem: 32 x this
    skip_reduction_input: bool = False   # NASNet-A Large's chaining (nasnet convention only)

    def __post_init__(self):
        for key in ("C", "layers", "image_size", "in_channels", "stem_multiplier"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be at least 0 (0: no classifier), got {self.num_classes}")

    @property
    def stem(self) -> str:
        return "imagenet" if self.image_size > 64 else "cifar"

    @property
    def feature_levels(self) -> int:
        """How many feature maps the network lists in `feature_info`: one per stage, and those of the ImageNet stem."""
        return 3 + (CONVENTIONS[self.convention].imagenet_stem_levels if self.stem == "imagenet" else 0)

    def build(self, auxiliary: bool = False, drop_path: float = 0.0) -> FixedNetwork:
        return build_network(self.genotype, self.C, self.layers, self.num_classes, stem=self.stem,
                       convention=self.convention, auxiliary=auxiliary, drop_path=drop_path,
                       in_channels=self.in_channels, stem_multiplier=self.stem_multiplier,
                       skip_reduction_input=self.skip_reduction_input)

    def to_dict(self) -> dict:
        return {**asdict(self), "genotype": self.genotype.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> NetSpec:
        return cls(**{**d, "genotype": Genotype.from_dict(d["genotype"])})
