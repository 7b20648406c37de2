"""Size limits on the fixed network a candidate stands for (e.g. the 600M mult-add mobile budget).

The network is `build_network(genotype, C, layers, ...)` at the target size (which
may differ from the supernet's), built on the meta device so that even large
targets cost neither memory nor compute. Parameters are counted without an
auxiliary head and mult-adds as supernet.sizes counts them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from supernet.network import build_network
from supernet.sizes import count_macs, count_params


@dataclass(frozen=True)
class Constraints:
    C: int
    layers: int
    num_classes: int
    image_size: int
    in_channels: int = 3
    max_params: int | None = None
    max_macs: int | None = None

    @property
    def stem(self) -> str:
        return "imagenet" if self.image_size > 64 else "cifar"

    def size(self, genotype) -> dict:
        """{"params": ..., "macs": ...} of the target network of `genotype`."""
        with torch.device("meta"):
            net = build_network(genotype, self.C, self.layers, self.num_classes, stem=self.stem,
                          in_channels=self.in_channels)
        return {"params": count_params(net), "macs": count_macs(net, self.image_size, self.in_channels)}

    def check(self, genotype) -> dict:
        """The size, and `rejected`: None, or which limit the network breaks."""
        size = self.size(genotype)
        rejected = None
        if self.max_params is not None and size["params"] > self.max_params:
            rejected = f"params {size['params']} > max_params {self.max_params}"
        elif self.max_macs is not None and size["macs"] > self.max_macs:
            rejected = f"macs {size['macs']} > max_macs {self.max_macs}"
        return {**size, "rejected": rejected}
