"""The zoo: every cell fits its space, and each equals its primary source read independently:
timm's NASNet-A / PNASNet-5 modules (traced), the TF cell specs, the ENAS arc, the DARTS text."""
import operator

import pytest
import torch
import torch.fx
from timm.models import nasnet, pnasnet
from torch import nn

from supernet import zoo
from supernet.genotype import Genotype
from supernet.space import get_space

NASNET_FAMILY = {"nasnet_a", "amoebanet_a", "pnasnet_5", "enas"}
DARTS_FAMILY = {"darts_v1", "darts_v2", "gdas"}


def test_names_and_spaces():
    assert set(zoo.names()) == NASNET_FAMILY | DARTS_FAMILY
    for name in zoo.names():
        assert zoo.space_of(name) == ("nasnet" if name in NASNET_FAMILY else "darts")


@pytest.mark.parametrize("name", sorted(NASNET_FAMILY | DARTS_FAMILY))
def test_cell_fits_its_space(name):
    g = zoo.get(name)
    space = get_space(zoo.space_of(name))
    seq = space.encode(g)
    assert len(seq) == len(space.decisions)
    back = space.decode(seq)
    assert (back.normal, back.reduce) == (g.normal, g.reduce)
    assert Genotype.from_json(g.to_json()) == g


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="nasnet_a.*darts_v2"):
        zoo.get("darts_v3")
    with pytest.raises(ValueError, match="unknown zoo cell"):
        zoo.space_of("nope")


# --- timm's hand-unrolled cells, read through torch.fx -------------------------------------------

class _CellTracer(torch.fx.Tracer):
    """Keeps the cell's direct children as leaves so each op appears as one call."""

    def is_leaf_module(self, m, qualname):
        return "." not in qualname or super().is_leaf_module(m, qualname)


def _timm_op(module) -> str:
    if isinstance(module, (nasnet.BranchSeparables, pnasnet.BranchSeparables)):
        k = module.separable_1.depthwise_conv2d.kernel_size[0]
        return f"sep_conv_{k}x{k}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return f"{'max' if isinstance(module, nn.MaxPool2d) else 'avg'}_pool_{k}x{k}"
    if isinstance(module, pnasnet.ActConvBn):  # TF's strided identity: relu-conv1x1/2-bn
        return "skip_connect"
    raise AssertionError(f"unexpected op {module}")


def _read_timm_cell(cell, inputs: dict[str, int]):
    """(blocks as sorted pairs, concat) of a timm cell; `inputs` maps its placeholder or
    preprocessing module names to our input indices (0 = h_{i-2}, 1 = h_{i-1})."""
    graph = _CellTracer().trace(cell)
    modules = dict(cell.named_modules())
    state, pairs, concat = {}, {}, None
    for node in graph.nodes:
        if node.op == "placeholder" and node.name in inputs:
            state[node] = inputs[node.name]
        elif node.op == "call_module" and node.target in inputs:
            state[node] = inputs[node.target]
        elif node.op == "call_module" and node.target.startswith("comb_iter_"):
            state[node] = (_timm_op(modules[node.target]), state[node.args[0]])
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            block = len(pairs)
            pairs[block] = sorted(state[a] if isinstance(state[a], tuple) else ("skip_connect", state[a])
                                  for a in node.args)
            state[node] = block + 2
        elif node.op == "call_function" and node.target is torch.cat:
            concat = [state[a] for a in node.args[0]]
    return [pairs[b] for b in range(len(pairs))], concat


def _ours(g: Genotype, reduction: bool):
    pairs, concat = g.cell(reduction)
    return [sorted(pairs[k:k + 2]) for k in range(0, len(pairs), 2)], list(concat)


def test_nasnet_a_is_timms_nasnetalarge_cells():
    g = zoo.get("nasnet_a")
    normal = nasnet.NormalCell(8, 4, 8, 4)
    assert _read_timm_cell(normal, {"conv_prev_1x1": 0, "conv_1x1": 1}) == _ours(g, False)
    reduce = nasnet.ReductionCell0(8, 4, 8, 4)
    assert _read_timm_cell(reduce, {"conv_prev_1x1": 0, "conv_1x1": 1}) == _ours(g, True)


def test_pnasnet_5_is_timms_pnasnet5large_cell():
    g = zoo.get("pnasnet_5")
    for reduction in (False, True):
        cell = pnasnet.Cell(8, 4, 8, 4, is_reduction=reduction)
        assert _read_timm_cell(cell, {"conv_prev_1x1": 0, "conv_1x1": 1}) == _ours(g, reduction)


# --- TF cell specs (operations, hiddenstate_indices, used_hiddenstates), TF index 0 = h_{i-1} ---

_TF_OPS = {"separable_3x3_2": "sep_conv_3x3", "separable_5x5_2": "sep_conv_5x5",
           "separable_7x7_2": "sep_conv_7x7", "avg_pool_3x3": "avg_pool_3x3",
           "max_pool_3x3": "max_pool_3x3", "none": "skip_connect", "1x7_7x1": "conv_7x1_1x7"}


def _from_tf(operations, indices, used):
    ours = [{0: 1, 1: 0}.get(j, j) for j in indices]
    blocks = [sorted((_TF_OPS[operations[k]], ours[k]) for k in (b, b + 1)) for b in range(0, 10, 2)]
    unused = [{0: 1, 1: 0}.get(j, j) for j, u in enumerate(used) if not u]
    return blocks, sorted(unused)


def test_amoebanet_a_is_the_tpu_spec():
    g = zoo.get("amoebanet_a")
    normal = _from_tf(['avg_pool_3x3', 'max_pool_3x3', 'separable_3x3_2', 'none', 'none', 'avg_pool_3x3',
                       'separable_3x3_2', 'separable_5x5_2', 'avg_pool_3x3', 'separable_3x3_2'],
                      [0, 0, 1, 1, 0, 1, 0, 2, 5, 0], [1, 0, 1, 0, 0, 1, 0])
    reduce = _from_tf(['separable_3x3_2', 'avg_pool_3x3', 'max_pool_3x3', 'separable_7x7_2', 'max_pool_3x3',
                       'max_pool_3x3', 'separable_3x3_2', '1x7_7x1', 'avg_pool_3x3', 'separable_7x7_2'],
                      [1, 0, 0, 2, 1, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0])
    assert (normal, reduce) == (_ours(g, False), _ours(g, True))


def test_nasnet_a_and_pnasnet_5_are_the_tf_slim_specs():
    nasnet_normal = _from_tf(['separable_5x5_2', 'separable_3x3_2', 'separable_5x5_2', 'separable_3x3_2',
                              'avg_pool_3x3', 'none', 'avg_pool_3x3', 'avg_pool_3x3', 'separable_3x3_2', 'none'],
                             [0, 1, 1, 1, 0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0])
    nasnet_reduce = _from_tf(['separable_5x5_2', 'separable_7x7_2', 'max_pool_3x3', 'separable_7x7_2',
                              'avg_pool_3x3', 'separable_5x5_2', 'none', 'avg_pool_3x3', 'separable_3x3_2',
                              'max_pool_3x3'],
                             [0, 1, 0, 1, 0, 1, 3, 2, 2, 0], [1, 1, 1, 0, 0, 0, 0])
    pnas = _from_tf(['separable_5x5_2', 'max_pool_3x3', 'separable_7x7_2', 'max_pool_3x3', 'separable_5x5_2',
                     'separable_3x3_2', 'separable_3x3_2', 'max_pool_3x3', 'separable_3x3_2', 'none'],
                    [1, 1, 0, 0, 0, 0, 4, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0])
    g, p = zoo.get("nasnet_a"), zoo.get("pnasnet_5")
    assert (nasnet_normal, nasnet_reduce) == (_ours(g, False), _ours(g, True))
    assert (pnas, pnas) == (_ours(p, False), _ours(p, True))


def test_enas_is_the_authors_final_arc():
    arc = [int(v) for v in ["0", "2", "0", "0", "0", "4", "0", "1", "0", "4", "1", "1", "1", "0", "0", "1", "0", "2", "1", "1", "1", "0", "1", "0", "0", "3", "0", "2", "1", "1", "3", "1", "1", "0", "0", "4", "0", "3", "1", "1"]]
    enas_ops = ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect"]
    g = zoo.get("enas")
    for reduction, part in ((False, arc[:20]), (True, arc[20:])):
        pairs = [(enas_ops[part[k + 1]], part[k]) for k in range(0, 20, 2)]
        assert g.cell(reduction)[0] == tuple(pairs)
        # ENAS concatenates the states no block reads
        assert g.cell(reduction)[1] == get_space("nasnet").cell_concat(pairs, reduction)


def test_darts_family_is_the_published_text():
    darts_v2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
                "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
                "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    darts_v1 = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
                "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
                "('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
                "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
                "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))")
    assert zoo.get("darts_v2") == Genotype.parse(darts_v2)
    assert zoo.get("darts_v1") == Genotype.parse(darts_v1)
    # AutoDL writes GDAS_V1 as one pair of (op, input) per step
    gdas_normal = [(('skip_connect', 0), ('skip_connect', 1)), (('skip_connect', 0), ('sep_conv_5x5', 2)),
                   (('sep_conv_3x3', 3), ('skip_connect', 0)), (('sep_conv_5x5', 4), ('sep_conv_3x3', 3))]
    gdas_reduce = [(('sep_conv_5x5', 0), ('sep_conv_3x3', 1)), (('sep_conv_5x5', 2), ('sep_conv_5x5', 1)),
                   (('dil_conv_5x5', 2), ('sep_conv_3x3', 1)), (('sep_conv_5x5', 0), ('sep_conv_5x5', 1))]
    g = zoo.get("gdas")
    assert g.normal == tuple(p for step in gdas_normal for p in step)
    assert g.reduce == tuple(p for step in gdas_reduce for p in step)
    for name in DARTS_FAMILY:
        assert zoo.get(name).normal_concat == zoo.get(name).reduce_concat == (2, 3, 4, 5)
