"""Published cells as data, in our notation (input 0 = h_{i-2}, 1 = h_{i-1}, k >= 2 = block k-2).

Sources, translated pair by pair (TF's cells index 0 = h_{i-1} and 1 = h_{i-2}, the reverse of ours):
- nasnet_a: TF-slim `nasnet_utils.NasNetA{Normal,Reduction}Cell`, as built by timm's `nasnet.py`.
- amoebanet_a: tensorflow/tpu `amoeba_net/model_specs.py`, cell `amoeba_net_a`.
- pnasnet_5: TF-slim `pnasnet.PNasNetNormalCell`, as built by timm's `pnasnet.py` (both cell types).
- enas: the ENAS authors' `scripts/cifar10_micro_final.sh` fixed arc (ops 0 sep3, 1 sep5, 2 avg, 3 max, 4 id).
- darts_v1, darts_v2: the DARTS repository's `cnn/genotypes.py`.
- gdas: `GDAS_V1` of AutoDL-Projects (`nas_infer_model/DXYs/genotypes.py`).

The concat is the published one. The TF cells concatenate the states their hand-set
`used_hiddenstates` marks unused, which differs from the "unused states" rule of the nasnet
space where a marked-unused state is also read by a block (NASNet-A normal keeps h_{i-2},
AmoebaNet-A normal keeps h_{i-2}, PNASNet-5 keeps every block).
"""
from __future__ import annotations

from .genotype import Genotype, GenotypeError

_CELLS = {
    "nasnet_a": ("nasnet", Genotype(
        normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0),
                ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
                ("avg_pool_3x3", 1), ("skip_connect", 0),
                ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
                ("sep_conv_3x3", 1), ("skip_connect", 1)],
        normal_concat=[0, 2, 3, 4, 5, 6],
        reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0),
                ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
                ("avg_pool_3x3", 1), ("sep_conv_5x5", 0),
                ("skip_connect", 3), ("avg_pool_3x3", 2),
                ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
        reduce_concat=[3, 4, 5, 6],
    )),
    "amoebanet_a": ("nasnet", Genotype(
        normal=[("avg_pool_3x3", 1), ("max_pool_3x3", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 0),
                ("skip_connect", 1), ("avg_pool_3x3", 0),
                ("sep_conv_3x3", 1), ("sep_conv_5x5", 2),
                ("avg_pool_3x3", 5), ("sep_conv_3x3", 1)],
        normal_concat=[0, 3, 4, 6],
        reduce=[("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
                ("max_pool_3x3", 1), ("sep_conv_7x7", 2),
                ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("sep_conv_3x3", 4), ("conv_7x1_1x7", 1),
                ("avg_pool_3x3", 0), ("sep_conv_7x7", 1)],
        reduce_concat=[2, 3, 4, 5, 6],
    )),
    "pnasnet_5": ("nasnet", Genotype(
        normal=[("sep_conv_5x5", 0), ("max_pool_3x3", 0),
                ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
                ("sep_conv_5x5", 1), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 1)],
        normal_concat=[2, 3, 4, 5, 6],
        reduce=[("sep_conv_5x5", 0), ("max_pool_3x3", 0),
                ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
                ("sep_conv_5x5", 1), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 1)],
        reduce_concat=[2, 3, 4, 5, 6],
    )),
    "enas": ("nasnet", Genotype(
        normal=[("avg_pool_3x3", 0), ("sep_conv_3x3", 0),
                ("skip_connect", 0), ("sep_conv_5x5", 0),
                ("skip_connect", 0), ("sep_conv_5x5", 1),
                ("sep_conv_3x3", 1), ("sep_conv_5x5", 0),
                ("avg_pool_3x3", 0), ("sep_conv_5x5", 1)],
        normal_concat=[2, 3, 4, 5, 6],
        reduce=[("sep_conv_3x3", 1), ("sep_conv_3x3", 1),
                ("max_pool_3x3", 0), ("avg_pool_3x3", 0),
                ("sep_conv_5x5", 1), ("sep_conv_5x5", 3),
                ("sep_conv_3x3", 1), ("skip_connect", 0),
                ("max_pool_3x3", 0), ("sep_conv_5x5", 1)],
        reduce_concat=[2, 4, 5, 6],
    )),
    "darts_v1": ("darts", Genotype(
        normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
                ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2),
                ("skip_connect", 2), ("avg_pool_3x3", 0)],
        reduce_concat=[2, 3, 4, 5],
    )),
    "darts_v2": ("darts", Genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0),
                ("skip_connect", 0), ("dil_conv_3x3", 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2),
                ("skip_connect", 2), ("max_pool_3x3", 1)],
        reduce_concat=[2, 3, 4, 5],
    )),
    "gdas": ("darts", Genotype(
        normal=[("skip_connect", 0), ("skip_connect", 1),
                ("skip_connect", 0), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 3), ("skip_connect", 0),
                ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
                ("sep_conv_5x5", 2), ("sep_conv_5x5", 1),
                ("dil_conv_5x5", 2), ("sep_conv_3x3", 1),
                ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
        reduce_concat=[2, 3, 4, 5],
    )),
}


def names() -> list[str]:
    return list(_CELLS)


def _entry(name: str):
    if name not in _CELLS:
        raise GenotypeError(f"unknown zoo cell {name!r}; choose one of {', '.join(_CELLS)}")
    return _CELLS[name]


def get(name: str) -> Genotype:
    """The published genotype `name` (see `names()`)."""
    return _entry(name)[1]


def space_of(name: str) -> str:
    """The search space ("nasnet" or "darts") whose ops and block count the cell uses."""
    return _entry(name)[0]
