"""The weight-sharing supernet: every candidate (input, op) of every block of every cell.

It knows architectures, never algorithms: `forward(x, arch=g)` runs the single
path of genotype g; `forward(x, weights=w)` runs, for each block, the sum over
(input j, op o) of W[j, o] * op_{j,o}(h_j) with W = sum over slots of
p_slot(j) * q_slot(o), skipping every term whose weight is exactly 0. Each (block, input, op) term holds its own op
weights, as in the one-shot models of ENAS and Bender et al.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from .backbone import CellSpec, Stem, cell_plan, op_stride
from .darts_convention import DartsNetwork, preprocess
from .genotype import Genotype, GenotypeError
from .ops import OPS, with_output_bn
from .space import SearchSpace, get_space

# one block's terms: (input j, op o, weight or None for the single path)
Terms = list[list[tuple[int, int, torch.Tensor | None]]]


class SearchCell(nn.Module):
    def __init__(self, space: SearchSpace, C_pp: int, C_p: int, spec: CellSpec, ops: dict):
        super().__init__()
        self.reduction = spec.reduction
        self.C = spec.C
        self.preprocess0, self.preprocess1 = preprocess(C_pp, C_p, spec, affine=False)
        self.edges = nn.ModuleList(
            nn.ModuleList(nn.ModuleList(ops[op](spec.C, op_stride(spec, j), False) for op in space.ops)
                          for j in range(b + 2))
            for b in range(space.num_blocks))

    def forward(self, s0, s1, channels0, channels1, terms: Terms, concat, checkpoint: bool = False):
        states = [self.preprocess0(s0, channels0), self.preprocess1(s1, channels1)]
        for b, block_terms in enumerate(terms):
            h = 0
            for j, o, w in block_terms:
                op = self.edges[b][j][o]
                y = (torch.utils.checkpoint.checkpoint(op, states[j], use_reentrant=False,
                                                       context_fn=lambda op=op: (contextlib.nullcontext(), _statistics_kept(op)))
                     if checkpoint else op(states[j]))
                h = h + (y if w is None else w * y)
            states.append(h)
        return torch.cat([states[i] for i in concat], dim=1)


@contextlib.contextmanager
def _statistics_kept(op: nn.Module):
    """Batch norm whose running statistics move by nothing (momentum 0, the count put back): a
    checkpointed op's recomputation in backward, so that they are updated once a step, as without
    checkpointing."""
    norms = [(m, m.momentum, m.num_batches_tracked.clone()) for m in op.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m, _, _ in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, count in norms:
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


@dataclass(frozen=True)
class SuperNetSpec:
    """The shape of a supernet: everything that must match for its weights to load."""
    space: str
    C: int
    layers: int
    num_classes: int
    in_channels: int = 3
    stem: str = "cifar"
    stem_multiplier: int = 3
    op_bn: bool = False          # BN after the ops that have none (pools, identity): supernet.ops.with_output_bn

    def build(self) -> SuperNet:
        return SuperNet(get_space(self.space), self.C, self.layers, self.num_classes, self.stem, self.in_channels,
                        self.stem_multiplier, self.op_bn)

    def to_dict(self) -> dict:
        return asdict(self)


def build_supernet(*args, **kwargs) -> SuperNet:
    """`SuperNetSpec(*args, **kwargs).build()`: a supernet from its space's name and shape."""
    return SuperNetSpec(*args, **kwargs).build()


class SuperNet(nn.Module):
    def __init__(self, space: SearchSpace, C: int = 16, layers: int = 8, num_classes: int = 10,
                 stem: str = "cifar", in_channels: int = 3, stem_multiplier: int = 3, op_bn: bool = False):
        super().__init__()
        self.space = space
        self.spec = SuperNetSpec(space.name, C, layers, num_classes, in_channels, stem, stem_multiplier, op_bn)
        self.ops = with_output_bn(OPS) if op_bn else OPS
        self._op_index = {op: i for i, op in enumerate(space.ops)}
        self._channel_cache: dict = {}
        self.stem = Stem(stem, in_channels, C, stem_multiplier)
        C_pp, C_p = self.stem.channels
        self.cells = nn.ModuleList()
        for spec in cell_plan(C, layers, self.stem.reduction_prev):
            self.cells.append(SearchCell(space, C_pp, C_p, spec, self.ops))
            C_pp, C_p = C_p, len(space.concat_states(spec.reduction)) * spec.C
        self.classifier = nn.Linear(C_p, num_classes)

    # -- what runs ---------------------------------------------------------
    def _arch_plan(self, genotype: Genotype) -> dict:
        self.space.encode(genotype)  # checks the ops and the block count
        plan = {}
        for reduction in (False, True):
            pairs, concat = genotype.cell(reduction)
            terms = [[(j, self._op_index[op], None) for op, j in pairs[2 * b:2 * b + 2]]
                     for b in range(len(pairs) // 2)]
            plan[reduction] = (terms, concat)
        return plan

    def _weights_plan(self, weights) -> dict:
        decisions = self.space.decisions
        if len(weights) != len(decisions):
            raise ValueError(f"weights must hold one vector per decision ({len(decisions)}), got {len(weights)}")
        for d, w in zip(decisions, weights):
            if w.shape != (d.num_choices,):
                raise ValueError(f"weights for {d.name} must have shape ({d.num_choices},), got {tuple(w.shape)}")
        # W[j, o] of every block of both cell types, then one host sync for all zero tests
        blocks = [torch.outer(weights[i], weights[i + 1]) + torch.outer(weights[i + 2], weights[i + 3])
                  for i in range(0, len(weights), 4)]
        nonzero = torch.cat([W.flatten() != 0 for W in blocks]).tolist()
        argmax = torch.stack([w.argmax() for w in weights]).tolist()
        B = self.space.num_blocks
        derived = self.space.decode(argmax)
        plan, k = {}, 0
        for reduction in (False, True):
            terms = []
            for W in blocks[reduction * B:(reduction + 1) * B]:
                n_in, n_ops = W.shape
                terms.append([(j, o, W[j, o]) for j in range(n_in) for o in range(n_ops) if nonzero[k + j * n_ops + o]])
                k += W.numel()
            # the output concatenates what the argmax cell would (fixed for the darts space)
            plan[reduction] = (terms, derived.cell(reduction)[1])
        return plan

    def _channels(self, cell: SearchCell, concat, device) -> torch.Tensor:
        """Input-channel index, in the next cell's weights, of the output of `cell`
        when it concatenates the states `concat`."""
        C, reduction = cell.C, cell.reduction
        key = (tuple(concat), C, reduction, device)
        if key not in self._channel_cache:
            slots = self.space.concat_states(reduction)
            missing = [s for s in concat if s not in slots]
            if missing:
                raise GenotypeError(f"space {self.space.name!r} cannot concatenate states {missing} "
                                    f"(it concatenates {list(slots)})")
            index = [slots.index(s) * C + c for s in concat for c in range(C)]
            self._channel_cache[key] = torch.tensor(index, device=device)
        return self._channel_cache[key]

    def forward(self, x, arch: Genotype | None = None, weights=None, checkpoint: bool = False):
        """The logits of the single path `arch` or of the mixture `weights`; with `checkpoint`, each op's
        activations are recomputed in backward instead of kept (torch.utils.checkpoint): the same
        gradients in far less memory (supernet.runtime.memory)."""
        if (arch is None) == (weights is None):
            raise ValueError("give exactly one of arch= (single path) or weights= (relaxed)")
        plan = self._arch_plan(arch) if arch is not None else self._weights_plan(weights)
        s0, s1 = self.stem(x)
        c0 = c1 = None
        for cell in self.cells:
            terms, concat = plan[cell.reduction]
            s0, s1 = s1, cell(s0, s1, c0, c1, terms, concat, checkpoint)
            c0, c1 = c1, self._channels(cell, concat, x.device)
        return F.linear(s1.mean((2, 3)), self.classifier.weight.index_select(1, c1), self.classifier.bias)

    # -- weight inheritance ------------------------------------------------
    def subnet(self, genotype: Genotype) -> DartsNetwork:
        """The fixed network of `genotype` holding copies of the inherited weights."""
        self.space.encode(genotype)
        spec = self.spec
        with torch.device("meta"):   # every weight is copied below: no initialisation (nor random draw) needed
            net = DartsNetwork(genotype, spec.C, spec.layers, spec.num_classes, spec.stem, affine=False,
                               in_channels=spec.in_channels, stem_multiplier=spec.stem_multiplier, ops=self.ops)
        device = self.classifier.weight.device
        net = net.to_empty(device=device).train(self.training)
        net.stem.load_state_dict(self.stem.state_dict())
        c0 = c1 = None
        for fixed, cell in zip(net.cells, self.cells):
            _copy_sliced(fixed.preprocess0, cell.preprocess0, c0)
            _copy_sliced(fixed.preprocess1, cell.preprocess1, c1)
            pairs, concat = genotype.cell(cell.reduction)
            for k, (op, j) in enumerate(pairs):
                fixed.ops[k].load_state_dict(cell.edges[k // 2][j][self._op_index[op]].state_dict())
            c0, c1 = c1, self._channels(cell, concat, device)
        net.classifier.load_state_dict({"weight": self.classifier.weight.index_select(1, c1),
                                        "bias": self.classifier.bias})
        return net


def _copy_sliced(dst: nn.Module, src: nn.Module, in_channels: torch.Tensor | None):
    """Copy a preprocessing module, keeping the conv input channels that are present."""
    state = src.state_dict()
    if in_channels is not None:
        state = {k: v.index_select(1, in_channels) if v.dim() == 4 else v for k, v in state.items()}
    dst.load_state_dict(state)
