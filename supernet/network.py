"""The fixed network of a genotype, in either cell convention (one factory, as timm's model builders).

    net = build_network(genotype, C=36, layers=20, num_classes=10, stem="cifar", convention="darts",
                        auxiliary=True, drop_path=0.2)

`darts` builds cells as the DARTS code does (supernet.darts_convention; the supernet's subnets),
`nasnet` as the NASNet-A / PNASNet-5 reference code does (supernet.nasnet_convention).
"""
from __future__ import annotations

from .darts_convention import DartsNetwork
from .errors import UserError
from .genotype import Genotype
from .nasnet_convention import NasnetNetwork
from .network_base import FixedNetwork

CONVENTIONS = {"darts": DartsNetwork, "nasnet": NasnetNetwork}


def build_network(genotype: Genotype, C: int, layers: int, num_classes: int, stem: str = "cifar",
            convention: str = "darts", skip_reduction_input: bool = False, **settings) -> FixedNetwork:
    """The network of `genotype` in `convention`; `settings` are those both classes take (auxiliary,
    drop_path, affine, in_channels, stem_multiplier). `skip_reduction_input` is NASNet-A Large's
    chaining, a nasnet-convention setting."""
    if convention not in CONVENTIONS:
        raise UserError(f"unknown cell convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    if skip_reduction_input:
        if convention != "nasnet":
            raise UserError("skip_reduction_input is a NASNet-convention setting; use convention=nasnet")
        settings["skip_reduction_input"] = True
    return CONVENTIONS[convention](genotype, C, layers, num_classes, stem=stem, **settings)
