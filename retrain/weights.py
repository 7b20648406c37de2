"""The weights file a retraining ends with: `model.safetensors`, the inference network's weights (the
auxiliary head, a training-only branch, left out) with the NetSpec that built it in its metadata, so
that a file of another network is refused in one line instead of failing on tensor shapes.

    save_weights(net, spec, run_dir / WEIGHTS_FILE)
    check_weights_file(path, spec)        # before timm loads it as pretrained weights
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from supernet.errors import UserError

from .spec import NetSpec

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_KEY = "network"   # the metadata entry that holds the NetSpec
ADAPTABLE = ("num_classes", "in_channels")   # timm adapts the classifier and the first conv itself


def save_weights(net, spec: NetSpec, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items() if not k.startswith("aux_head.")}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={WEIGHTS_KEY: json.dumps(spec.to_dict())})
    tmp.replace(path)


def check_weights_file(path, spec: NetSpec) -> None:
    """Refuse, in one line, a weights file written for another network than `spec`."""
    if not Path(path).is_file():
        raise UserError(f"weights file {path} does not exist")
    with safe_open(str(path), framework="pt") as f:
        saved = json.loads((f.metadata() or {}).get(WEIGHTS_KEY, "null"))
    if saved is None:
        return   # weights from elsewhere: their shapes decide
    changed = [k if k == "genotype" else f"{k}: {saved.get(k)!r} -> {v!r}"
               for k, v in spec.to_dict().items() if k not in ADAPTABLE and saved.get(k) != v]
    if changed:
        raise UserError(f"{path} holds the weights of another network ({'; '.join(changed)})")
