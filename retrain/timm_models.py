"""The zoo's networks as timm models, registered when `retrain` is imported.

    import retrain, timm
    timm.create_model("nas_darts_v2")                              # DARTS V2, ImageNet mobile (C=48, 14 cells)
    timm.create_model("nas_darts_v2", num_classes=10, image_size=32, C=36, layers=20)   # its CIFAR-10 network
    timm.create_model("nas_nasnet_a_large")                        # NASNet-A 6@4032 at 331x331
    timm.create_model("nas_genotype", genotype="runs/search/search.json")

Names: `nas_<cell>` for every zoo cell (nas_nasnet_a, nas_amoebanet_a, nas_pnasnet_5, nas_enas,
nas_darts_v1, nas_darts_v2, nas_gdas) in the ImageNet mobile setting -- the DARTS family as
DARTS builds it (C=48, 14 cells), the NASNet family in the NASNet convention as NASNet-A
Mobile (4@1056: C=44, 14 cells, stem multiplier 1; PNASNet-5 Mobile: C=54, 9 cells) --,
`nas_nasnet_a_large`, `nas_pnasnet_5_large` (the reference large networks), and
`nas_genotype`, which takes `genotype=` (zoo name, search.json, genotype JSON file or text).
Keyword arguments override any NetSpec field (C, layers, image_size, convention,
stem_multiplier, skip_reduction_input); timm's `drop_path_rate` sets the drop-path rate.
No pretrained weights exist. The auxiliary head is off: timm's training loop expects logits.
"""
from __future__ import annotations

import functools

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from supernet import zoo
from supernet.errors import UserError
from supernet.genotype import Genotype
from supernet.genotype_source import resolve_genotype

from .spec import NetSpec

_MOBILE_CFG = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bilinear", "mean": IMAGENET_DEFAULT_MEAN,
                   "std": IMAGENET_DEFAULT_STD, "num_classes": 1000, "classifier": "classifier"}
_LARGE_CFG = dict(_MOBILE_CFG, input_size=(3, 331, 331), crop_pct=0.911, interpolation="bicubic",
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))   # as timm's nasnetalarge / pnasnet5large


def _mobile(name: str) -> dict:
    if zoo.space_of(name) == "darts":
        return {"C": 48, "layers": 14}
    return {"C": 54, "layers": 9, "stem_multiplier": 1} if name == "pnasnet_5" else {"C": 44, "layers": 14, "stem_multiplier": 1}


# model name: (zoo cell or None for `genotype=`, NetSpec settings, timm data config)
MODELS = {
    **{f"nas_{name}": (name, _mobile(name), _MOBILE_CFG) for name in zoo.names()},
    "nas_nasnet_a_large": ("nasnet_a", {"C": 168, "layers": 20, "stem_multiplier": 3, "skip_reduction_input": True},
                           _LARGE_CFG),
    "nas_pnasnet_5_large": ("pnasnet_5", {"C": 216, "layers": 12, "stem_multiplier": 3}, _LARGE_CFG),
    "nas_genotype": (None, {"C": 48, "layers": 14}, _MOBILE_CFG),
}

default_cfgs = generate_default_cfgs({name: cfg for name, (_, _, cfg) in MODELS.items()})


def _network(cell, settings, num_classes=1000, in_chans=3, genotype=None, drop_rate=0.0, drop_path_rate=0.0,
             **overrides):
    if drop_rate:
        raise UserError("these networks have no dropout before the classifier; leave drop_rate at 0")
    if (cell is None) == (genotype is None):
        raise UserError("nas_genotype needs genotype=...; the other nas_* models take none"
                         if cell is None else f"this model is the {cell} cell; use nas_genotype for another genotype")
    if isinstance(genotype, Genotype):
        source, convention = genotype, "darts"
    else:
        source, convention = resolve_genotype(cell or genotype)
    fields = {"convention": convention, **settings, **overrides}
    try:
        spec = NetSpec(source, num_classes=num_classes, in_channels=in_chans, **fields)
    except TypeError as e:   # an argument NetSpec does not know
        raise UserError(f"unsupported model argument: {e}") from None
    net = spec.build(drop_path=drop_path_rate)
    net.num_classes = num_classes
    return net


def _register(name: str, cell, settings, cfg):
    image_size = cfg["input_size"][-1]

    def entrypoint(pretrained=False, **kwargs):
        kwargs.setdefault("image_size", image_size)
        return build_model_with_cfg(functools.partial(_network, cell, settings), name, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = f"{cell or 'any genotype'}: {settings}"
    register_model(entrypoint)


for _name, (_cell, _settings, _cfg) in MODELS.items():
    _register(_name, _cell, _settings, _cfg)
