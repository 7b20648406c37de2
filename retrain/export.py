"""A retrained network, loaded through timm, exported for deployment.

    nas-retrain export RUN --onnx model.onnx --torchscript model.pt

The network is `nas_genotype` with the run's genotype and settings (RUN/retrain.json) and its final
weights (RUN/model.safetensors), in eval mode. ONNX goes through `torch.onnx.export` (the
torch.export-based exporter; the batch dimension stays dynamic), TorchScript through `torch.jit.script`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import timm
import torch

from supernet.errors import MissingFileError

from .train import SUMMARY_FILE
from .weights import WEIGHTS_FILE


def load_retrained(run_dir) -> torch.nn.Module:
    """The final network of the nas-retrain run in `run_dir`, through timm, in eval mode."""
    run_dir = Path(run_dir)
    if not (run_dir / SUMMARY_FILE).is_file():
        raise MissingFileError(f"{run_dir} holds no finished nas-retrain run (no {SUMMARY_FILE})")
    return timm.create_model("nas_genotype", genotype=str(run_dir / SUMMARY_FILE), pretrained=True,
                             pretrained_cfg_overlay={"file": str(run_dir / WEIGHTS_FILE)}).eval()


def example_input(net, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *net.pretrained_cfg["input_size"])


def export_onnx(net, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(net, (example_input(net),), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_shapes={"x": {0: batch}}, dynamo=True)


def export_torchscript(net, path: Path) -> None:
    torch.jit.script(net).save(str(path))


def main(argv):
    parser = argparse.ArgumentParser(prog="nas-retrain export", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished nas-retrain run directory")
    parser.add_argument("--onnx", type=Path, help="ONNX file to write")
    parser.add_argument("--torchscript", type=Path, help="TorchScript file to write")
    args = parser.parse_args(argv)
    if not (args.onnx or args.torchscript):
        parser.error("give --onnx FILE, --torchscript FILE or both")
    net = load_retrained(args.run)
    if args.onnx:
        export_onnx(net, args.onnx)
        print(f"ONNX: {args.onnx}")
    if args.torchscript:
        export_torchscript(net, args.torchscript)
        print(f"TorchScript: {args.torchscript}")
