"""The zoo's networks, any genotype and any retrained network as timm models, registered when
`retrain` is imported.

    import retrain, timm
    timm.create_model("nas_darts_v2")                              # DARTS V2, ImageNet mobile (C=48, 14 cells)
    timm.create_model("nas_darts_v2", num_classes=10, image_size=32, C=36, layers=20)   # its CIFAR-10 network
    timm.create_model("nas_nasnet_a_large")                        # NASNet-A 6@4032 at 331x331
    timm.create_model("nas_genotype", genotype="runs/search/search.json")
    timm.create_model("nas_genotype", genotype="RUN/retrain.json", pretrained=True,
                      pretrained_cfg_overlay=dict(file="RUN/model.safetensors"))   # a nas-retrain run's network

Names: `nas_<cell>` for every zoo cell (nas_nasnet_a, nas_amoebanet_a, nas_pnasnet_5, nas_enas,
nas_darts_v1, nas_darts_v2, nas_gdas) in the ImageNet mobile setting -- the DARTS family as
DARTS builds it (C=48, 14 cells), the NASNet family in the NASNet convention as NASNet-A
Mobile (4@1056: C=44, 14 cells, stem multiplier 1; PNASNet-5 Mobile: C=54, 9 cells) --,
`nas_nasnet_a_large`, `nas_pnasnet_5_large` (the reference large networks), and
`nas_genotype`, which takes `genotype=` (zoo name, search.json, retrain.json, genotype JSON file
or text; DARTS V2 when none is given). A retrain.json brings the settings of its network (size,
classes, image size, convention), so that its `model.safetensors` loads as timm's pretrained weights;
a weights file of another network is one clear error. Keyword arguments override any NetSpec
field (C, layers, image_size, convention, stem_multiplier, skip_reduction_input); timm's
`drop_path_rate` sets the drop-path rate and `global_pool` the pooling. The models follow timm's
contract (supernet.network_base): `features_only=True` gives one feature map per resolution.
The auxiliary head is off: timm's training loop expects logits.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from supernet import zoo
from supernet.errors import UserError
from supernet.genotype import Genotype
from supernet.genotype_lookup import resolve_genotype

from .spec import NetSpec
from .weights import check_weights_file

DEFAULT_GENOTYPE = "darts_v2"   # what nas_genotype builds when no genotype is given

_MOBILE_CFG = {"input_size": (3, 224, 224), "pool_size": (7, 7), "crop_pct": 0.875, "interpolation": "bilinear",
               "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD, "num_classes": 1000,
               "classifier": "classifier", "first_conv": "stem.stem0.0"}
_NASNET_MOBILE_CFG = dict(_MOBILE_CFG, first_conv="stem.conv0.0")
_LARGE_CFG = dict(_NASNET_MOBILE_CFG, input_size=(3, 331, 331), pool_size=(11, 11), crop_pct=0.911,
                  interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))   # as timm's nasnetalarge


def _mobile(name: str) -> dict:
    if zoo.space_of(name) == "darts":
        return {"C": 48, "layers": 14}
    return {"C": 54, "layers": 9, "stem_multiplier": 1} if name == "pnasnet_5" else {"C": 44, "layers": 14, "stem_multiplier": 1}


# model name: (zoo cell or None for `genotype=`, NetSpec settings, timm data config)
MODELS = {
    **{f"nas_{name}": (name, _mobile(name), _MOBILE_CFG if zoo.space_of(name) == "darts" else _NASNET_MOBILE_CFG)
       for name in zoo.names()},
    "nas_nasnet_a_large": ("nasnet_a", {"C": 168, "layers": 20, "stem_multiplier": 3, "skip_reduction_input": True},
                           _LARGE_CFG),
    "nas_pnasnet_5_large": ("pnasnet_5", {"C": 216, "layers": 12, "stem_multiplier": 3}, _LARGE_CFG),
    "nas_genotype": (None, {"C": 48, "layers": 14}, _MOBILE_CFG),
}

default_cfgs = generate_default_cfgs({name: cfg for name, (_, _, cfg) in MODELS.items()})


def recorded_network(source) -> dict:
    """The network a nas-retrain run recorded in its retrain.json (NetSpec fields, genotype aside),
    or {} when `source` names no retrain.json."""
    path = Path(source) if isinstance(source, str) else None
    if path is None or path.suffix != ".json" or not path.is_file():
        return {}
    record = json.loads(path.read_text())
    network = record.get("network") if isinstance(record, dict) else None
    return {k: v for k, v in network.items() if k != "genotype"} if isinstance(network, dict) else {}


def _spec(cell, settings: dict, genotype, num_classes: int, in_chans: int, overrides: dict) -> NetSpec:
    if cell is not None and genotype is not None:
        raise UserError(f"this model is the {cell} cell; use nas_genotype for another genotype")
    if isinstance(genotype, Genotype):
        source, convention = genotype, "darts"
    else:
        source, convention = resolve_genotype(cell or genotype or DEFAULT_GENOTYPE)
    fields = {"convention": convention, **settings, **overrides}
    try:
        return NetSpec(source, num_classes=num_classes, in_channels=in_chans, **fields)
    except TypeError as e:   # an argument NetSpec does not know
        raise UserError(f"unsupported model argument: {e}") from None


def _network(spec: NetSpec, num_classes: int, in_chans: int, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
             global_pool: str = "avg", **unused):
    """The network of `spec` (whose classes and input channels the entry point set from the same arguments)."""
    if drop_rate:
        raise UserError("these networks have no dropout before the classifier; leave drop_rate at 0")
    if unused:
        raise UserError(f"unsupported model argument: {', '.join(unused)}")
    net = spec.build(drop_path=drop_path_rate)
    if global_pool != "avg":
        net.reset_classifier(spec.num_classes, global_pool)
    return net


def _register(name: str, cell, settings, cfg):
    def entrypoint(pretrained=False, **kwargs):
        genotype = kwargs.pop("genotype", None)
        recorded = recorded_network(genotype)
        num_classes = kwargs.pop("num_classes", recorded.pop("num_classes", cfg["num_classes"]))
        in_chans = kwargs.pop("in_chans", recorded.pop("in_channels", cfg["input_size"][0]))
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in NetSpec.__dataclass_fields__}
        spec = _spec(cell, settings, genotype, num_classes, in_chans,
                     {"image_size": cfg["input_size"][-1], **recorded, **overrides})
        overlay = dict(kwargs.pop("pretrained_cfg_overlay", None) or {})
        if recorded:   # the retrained network's own data settings, so that its weights keep their classifier
            overlay.update(num_classes=spec.num_classes, input_size=(spec.in_channels, spec.image_size, spec.image_size))
        if pretrained and overlay.get("file"):
            check_weights_file(overlay["file"], spec)
        return build_model_with_cfg(
            functools.partial(_network, spec), name, pretrained, pretrained_cfg_overlay=overlay,
            feature_cfg={"feature_cls": "getter", "out_indices": tuple(range(spec.feature_levels))},
            num_classes=spec.num_classes, in_chans=spec.in_channels, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = f"{cell or 'any genotype'}: {settings}"
    register_model(entrypoint)


for _name, (_cell, _settings, _cfg) in MODELS.items():
    _register(_name, _cell, _settings, _cfg)
