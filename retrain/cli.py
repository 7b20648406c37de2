"""`nas-retrain`: train a genotype from scratch, report its size, or scale it to a budget.

    nas-retrain --config configs/cifar10_retrain.yaml --out runs/darts_v2 genotype=darts_v2
    nas-retrain describe darts_v2 --C 36 --layers 20 --dataset cifar10 --json
    nas-retrain describe nasnet_a --N 6 --F 4032 --dataset imagenet --image-size 331
    nas-retrain scale darts_v2 --macs 600M --N 4 --dataset imagenet
    nas-retrain export runs/darts_v2 --onnx model.onnx --torchscript model.pt

GENOTYPE is a zoo cell (supernet.zoo.names()), a search.json or a genotype JSON file.
The convention defaults to the cell's own: NASNet for the zoo's NASNet family, DARTS otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys

from supernet.genotype_lookup import resolve_genotype
from supernet.network import CONVENTIONS
from supernet.runtime.cli import command
from supernet.runtime.config import ConfigError

from .export import main as export
from .scaling import REDUCTIONS_AMONG_N, filters_of, layers_for, parse_amount, scale, width_for
from .sizes import measure
from .spec import NetSpec
from .train import train_from_argv

# dataset: (classes, image size, C, layers) of the DARTS settings, the defaults of describe/scale
DATASETS = {"cifar10": (10, 32, 36, 20), "imagenet": (1000, 224, 48, 14)}


def _network_args(parser: argparse.ArgumentParser):
    parser.add_argument("genotype", help="zoo cell name, search.json or genotype JSON file")
    parser.add_argument("--N", type=int, help="normal cells per stage (with --F; or give --C and --layers)")
    parser.add_argument("--C", type=int, help="channels per state in the first stage")
    parser.add_argument("--layers", type=int, help="cells after the stem, reductions included")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="cifar10")
    parser.add_argument("--image-size", type=int, help="default: 32 for cifar10, 224 for imagenet")
    parser.add_argument("--convention", choices=sorted(CONVENTIONS), help="default: the genotype's own")
    parser.add_argument("--stem-multiplier", type=int, default=3,
                        help="CIFAR stem C x this, NASNet ImageNet stem 32 x this (NASNet-A Mobile: 1)")
    parser.add_argument("--skip-reduction-input", action="store_true",
                        help="NASNet-A Large's chaining: the cell after a reduction reads the state two before it")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _spec(args, C: int | None = None) -> NetSpec:
    genotype, convention = resolve_genotype(args.genotype)
    classes, size, C_default, layers_default = DATASETS[args.dataset]
    if getattr(args, "F", None) is not None:
        if args.N is None or args.C is not None or args.layers is not None:
            raise ConfigError("give either --N and --F, or --C and --layers")
        C = width_for(genotype, args.F)
    if args.N is not None:
        if args.layers is not None:
            raise ConfigError("give either --N or --layers, not both")
        layers = layers_for(args.N, args.genotype in REDUCTIONS_AMONG_N)
    else:
        layers = args.layers or layers_default
    return NetSpec(genotype, C or args.C or C_default, layers, classes, args.image_size or size,
                   convention=args.convention or convention, stem_multiplier=args.stem_multiplier,
                   skip_reduction_input=args.skip_reduction_input)


def _summary(args, spec: NetSpec, sizes: dict) -> str:
    F = filters_of(spec.genotype, spec.C)
    return (f"{args.genotype} ({spec.convention} convention) C={spec.C} layers={spec.layers} F={F}: "
            f"{sizes['params']:,} params, {sizes['macs'] / 1e6:,.1f}M mult-adds at {spec.image_size}x{spec.image_size}")


def describe(argv):
    parser = argparse.ArgumentParser(prog="nas-retrain describe", description="Parameters and mult-adds of a network.")
    _network_args(parser)
    parser.add_argument("--F", type=int, help="penultimate filters (the N@F rule; with --N)")
    args = parser.parse_args(argv)
    spec = _spec(args)
    sizes = measure(spec)
    print(json.dumps(sizes) if args.json else _summary(args, spec, sizes))


def scale_to_budget(argv):
    parser = argparse.ArgumentParser(prog="nas-retrain scale",
                                     description="The widest network (largest F at fixed N) within a budget.")
    _network_args(parser)
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--macs", help="mult-add budget, e.g. 600M")
    budget.add_argument("--params", help="parameter budget, e.g. 5M")
    args = parser.parse_args(argv)
    metric = "macs" if args.macs else "params"
    spec, sizes = scale(_spec(args), parse_amount(args.macs or args.params), metric)
    result = {"F": filters_of(spec.genotype, spec.C), "C": spec.C, "layers": spec.layers, **sizes}
    print(json.dumps(result) if args.json else _summary(args, spec, sizes))


@command
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "describe":
        return describe(argv[1:])
    if argv and argv[0] == "scale":
        return scale_to_budget(argv[1:])
    if argv and argv[0] == "export":
        return export(argv[1:])
    train_from_argv(argv)
