"""How fast can DeepFM and AutoInt be in eager PyTorch? A lean model of each beside ctrkit's and deepctr-torch's.

    PYTHONPATH=/tmp/peers python benchmarks/peers_floor.py        # needs deepctr-torch, as models.py --peers

``benchmarks/models.py --peers`` sets ctrkit's DeepFM and AutoInt against deepctr-torch's at equal sizes. The
two libraries run the same heavy kernels: the MLP's matrix multiplies, and in AutoInt the two small batched
matrix multiplies and the softmax over 39 fields of every attention head. What a library can save is the work
around them, and this script measures how far that goes with a *lean* model of each: the least work that
computes deepctr-torch's function at its sizes, with exactly its number of parameters (checked). One lookup
for all 39 binned fields; AutoInt's query, key, value and residual projections in one matrix multiply per
layer, each head's attention on strided views of it, no scaling and no layout copies, 256 rows through all
layers at a time (as ctrkit); DeepFM's FM term from one sum and one sum of squares; no embedding L2, no
dropout, a plain Adam step. The lean models are not a ctrkit feature: they leave out what ctrkit's models
keep (dropout, the frequency-aware L2, numeric fields as tokens, attention maps for chapter 07, the same
numbers in any slicing).

The three implementations of a model take turns on the binned 200k twin (39 categorical fields), as in
``--peers``: an epoch of training at batch 4096 (deepctr-torch's ``fit``, ctrkit's ``fit``, a loop over the
same batches for the lean model) and a prediction of the test split at batch 4096 (``predict``,
``predict_logits``, the lean forward), for ``--repeats`` rounds in a rotating order (``models.take_turns``).
It prints each one's best samples/s and the median over the rounds of each round's ratio. The lean model's
ratio to deepctr-torch estimates the most an eager PyTorch implementation reaches on this machine: where it falls short
of a target, reaching it takes a fused kernel (scores, softmax and values computed in registers), not a better
model file.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from models import _timed, peer_pair, take_turns

ROWS = 256  # AutoInt rows that go through all layers at a time, as ctrkit.models.attention.CPU_ROWS
LABELS = {"peer": "deepctr-torch", "ctrkit": "ctrkit", "lean": "lean"}


class LeanDeepFM(nn.Module):
    """FM + linear term + MLP over one table of all fields' embeddings; ids (B, T) already offset per field."""

    def __init__(self, n_ids: int, n_fields: int, dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.table = nn.Parameter(torch.randn(n_ids, dim) * 0.01)
        self.linear = nn.Parameter(torch.zeros(n_ids, 1))
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip((n_fields * dim, *hidden), hidden))
        self.out = nn.Linear(hidden[-1] + self.extra(n_fields), 1)

    def extra(self, n_fields: int) -> int:
        return 0  # numbers besides the MLP's output that the logistic layer reads

    def forward(self, ids):
        e, linear = self.lookup(ids)
        return self.deep(e, linear) + 0.5 * (e.sum(1).square() - e.square().sum(1)).sum(1)  # + FM

    def lookup(self, ids):
        """The embeddings (B, T, D) and the linear term (B,)."""
        flat = ids.flatten()
        linear = self.linear.index_select(0, flat).view(ids.shape).sum(1)
        return self.table.index_select(0, flat).view(*ids.shape, -1), linear

    def deep(self, e, linear, *others):
        """The MLP over the flattened embeddings; its output and ``others`` into one logit, plus the linear term."""
        h = e.flatten(1)
        for layer in self.mlp:
            h = torch.relu(layer(h))
        return self.out(torch.cat([*others, h], 1) if others else h).squeeze(1) + linear


class LeanAutoInt(LeanDeepFM):
    """AutoInt+ : interacting layers (H heads of width d) and an MLP in parallel, one logistic layer over both."""

    def __init__(self, n_ids: int, n_fields: int, dim: int, hidden: tuple[int, ...], n_layers: int, heads: int, d: int):
        self.heads, self.d = heads, d  # before the base class sizes the logistic layer
        super().__init__(n_ids, n_fields, dim, hidden)
        widths = [dim] + [heads * d] * n_layers
        # one weight per layer: queries, keys, values and the residual projection side by side (no scaling,
        # as deepctr-torch's default)
        self.proj = nn.ParameterList(nn.Parameter(torch.randn(a, 4 * heads * d) / a**0.5) for a in widths[:-1])

    def extra(self, n_fields: int) -> int:
        return n_fields * self.heads * self.d  # the interacting layers' output, flattened

    def interact(self, x):
        r, t, _ = x.shape
        for w in self.proj:
            p = (x.reshape(r * t, -1) @ w).view(r, t, 4, self.heads, self.d)
            q, k, v = p[:, :, 0], p[:, :, 1], p[:, :, 2]  # (r, T, H, d) each, strided
            heads = [torch.bmm(torch.softmax(torch.bmm(q[:, :, h], k[:, :, h].transpose(1, 2)), -1), v[:, :, h])
                     for h in range(self.heads)]
            x = torch.relu(torch.stack(heads, 2) + p[:, :, 3]).view(r, t, -1)  # (r, T, H*d)
        return x

    def forward(self, ids):
        e, linear = self.lookup(ids)
        return self.deep(e, linear, torch.cat([self.interact(part) for part in e.split(ROWS)]).flatten(1))


def lean_model(name: str, mine, hp: dict) -> nn.Module:
    n_ids = sum(f.vocab_size for f in mine.embedding.spec.sparse)
    n_fields, dim, hidden = len(mine.embedding.spec.sparse), hp.get("embed_dim", 16), tuple(hp["hidden"])
    if name == "deepfm":
        return LeanDeepFM(n_ids, n_fields, dim, hidden)
    return LeanAutoInt(n_ids, n_fields, dim, hidden, hp["n_layers"], hp["n_heads"], hp["d_head"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["deepfm", "autoint"], choices=["deepfm", "autoint"])
    args = parser.parse_args()

    print(f"binned synthetic_criteo({args.rows:,}), batch 4096, {torch.get_num_threads()} threads, "
          f"{args.repeats} rounds taking turns; best samples/s, median of the rounds' ratios")
    for name in args.models:
        pair = peer_pair(name, args.rows, dense_transform="bins")
        lean = lean_model(name, pair.mine, pair.hparams)
        sizes = [sum(p.numel() for p in m.parameters()) for m in (pair.peer, lean)]
        if sizes[0] != sizes[1]:
            raise SystemExit(f"{name}: the lean model has {sizes[1]:,} parameters, deepctr-torch's {sizes[0]:,}")
        train, test, offsets = pair.train, pair.test, pair.mine.embedding.sparse.offsets
        batches = [(train.x_sparse[i:i + 4096] + offsets, train.y[i:i + 4096]) for i in range(0, len(train), 4096)]
        test_ids = [test.x_sparse[i:i + 4096] + offsets for i in range(0, len(test), 4096)]
        optimizer = torch.optim.Adam(lean.parameters(), lr=1e-3)

        def lean_epoch():
            lean.train()
            for ids, y in batches:
                loss = F.binary_cross_entropy_with_logits(lean(ids), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        def lean_predict():
            lean.eval()
            with torch.no_grad():
                return torch.cat([lean(ids) for ids in test_ids])

        turns = take_turns(pair.cases | {"lean": (lambda: _timed(lean_epoch), lean_predict)}, len(train), len(test),
                           args.repeats)
        for part, target in (("train", 1.5), ("infer", 2.0)):
            r = turns[part]
            print(f"{name:<8} {part:<6}" + "".join(f"  {LABELS[k]} {v['sps']:>9,.0f}" for k, v in r.items())
                  + f"  | ctrkit / deepctr-torch {r['ctrkit']['ratio']:.2f}x,"
                    f" lean / deepctr-torch {r['lean']['ratio']:.2f}x (target {target}x)", flush=True)


if __name__ == "__main__":
    main()
