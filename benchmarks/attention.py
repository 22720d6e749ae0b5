"""CPU paths benchmark: attention kernels (fp32 and bf16), AutoInt's interacting layers in slices, the embedding lookup.

    python benchmarks/attention.py                  # AutoInt's shape: B=4096, 2 heads, 39 tokens, head width 8
    python benchmarks/attention.py --heads 1 --width 16 --tokens 40 --queries 1   # the Transformer's [CLS] readout

Prints the best of ``--repeats`` forward + backward times of each path,
interleaved (one round of every path, then the next round), on ``--threads``
CPU threads:

- attention: the fused kernel, the explicit softmax over the whole batch, and
  ctrkit's :func:`ctrkit.models.attention.attention`, which on the CPU takes the
  explicit path over ``CPU_ROWS`` rows of the batch at a time, so that each
  slice's weights stay in the cache between the operations that read them (and
  the fused kernel for an fp32 readout of one query a row);
- AutoInt's three interacting layers (``configs/autoint.yaml``'s sizes, 39
  fields) one layer at a time over the whole batch (each attention still in
  slices) against ctrkit's ``AutoInt.interact``, which on the CPU runs all of
  them on ``CPU_ROWS`` rows before the next rows; the same numbers, checked;
- the fused embedding table's lookup (39 fields into 122k rows of 16, the binned
  200k twin's size): ``nn.Embedding``'s backward against ctrkit's, which sums the
  rows' gradients with ``index_add_``; the same gradient, checked.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ctrkit.models import build
from ctrkit.models.attention import CPU_ROWS, _explicit, attention
from ctrkit.models.layers import SparseEmbedding
from ctrkit.preprocessing.spec import FeatureSpec, SparseField


def explicit(q, k, v):
    return _explicit(q, k, v, 0.0, False)[0]


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def sliced(q, k, v):
    return attention(q, k, v)[0]


def interleaved(cases: dict, repeats: int) -> dict:
    """The best of ``repeats`` seconds of each case's ``fn()``, one round of every case after the other."""
    for fn in cases.values():  # warm-up
        fn()
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for key, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def autoint_layers(batch: int, repeats: int) -> None:
    spec = FeatureSpec(dense=(), sparse=tuple(SparseField(f"C{i}", 100, 16) for i in range(1, 40)))
    model = build("autoint", spec, embed_dim=16, n_layers=3, n_heads=2, d_head=8)
    e = torch.randn(batch, 39, 16, requires_grad=True)
    grad = torch.randn(batch, 39, 16)

    def whole():
        return model._interact(e, False)[0]

    def head():  # as AutoInt.head runs them
        return model.interact(e)[0]

    results = {}
    paths = {"layers over the whole batch (attention in slices)": whole,
             f"ctrkit AutoInt.interact ({CPU_ROWS}-row slices)": head}
    for name, fn in paths.items():
        e.grad = None
        out = fn()
        out.backward(grad)
        results[name] = (out.detach(), e.grad.clone())
    (y0, g0), (y1, g1) = results.values()
    same = torch.equal(y0, y1) and torch.equal(g0, g1)
    best = interleaved({name: (lambda fn=fn: fn().backward(grad)) for name, fn in paths.items()}, repeats)
    print(f"AutoInt's 3 interacting layers, forward + backward, {batch} rows x 39 fields, best of {repeats}; "
          f"outputs and gradients {'identical' if same else 'DIFFERENT'}")
    for name, seconds in best.items():
        print(f"  {name:<54}{seconds * 1000:8.1f} ms")
    whole_s, sliced_s = best.values()
    print(f"AutoInt's layers in slices are {whole_s / sliced_s:.2f}x the speed of the layers over the whole batch")


def lookup(batch: int, repeats: int) -> None:
    rows, fields = 122_000, 39
    spec = FeatureSpec(dense=(), sparse=tuple(SparseField(f"C{i}", rows // fields, 16) for i in range(fields)))
    ours = SparseEmbedding(spec, 16)
    plain = torch.nn.Embedding.from_pretrained(ours.table.weight.detach().clone(), freeze=False)
    ids = torch.randint(0, rows // fields, (batch, fields))
    grad = torch.randn(batch, fields, 16)
    ours(ids).backward(grad)
    plain(ids + ours.offsets).backward(grad)
    same = torch.equal(ours.table.weight.grad, plain.weight.grad)

    def step(module, x):
        module.zero_grad(set_to_none=True)
        module(x).backward(grad)

    best = interleaved({"nn.Embedding": lambda: step(plain, ids + ours.offsets),
                        "ctrkit SparseEmbedding": lambda: step(ours, ids)}, repeats)
    print(f"embedding lookup, forward + backward, {batch} x {fields} ids into {rows:,} x 16, best of {repeats}; "
          f"gradients {'identical' if same else 'DIFFERENT'}")
    for name, seconds in best.items():
        print(f"  {name:<36}{seconds * 1000:8.1f} ms")
    print(f"ctrkit's lookup is {best['nn.Embedding'] / best['ctrkit SparseEmbedding']:.2f}x nn.Embedding's speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=39)
    parser.add_argument("--queries", type=int, help="queries a row (default: every token; 1: a [CLS] readout)")
    parser.add_argument("--width", type=int, default=8, help="head width d")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (args.batch, args.heads, args.tokens, args.width)
    q_shape = (*shape[:2], args.queries or args.tokens, args.width)
    paths = {"fused": fused, "explicit": explicit, "ctrkit attention()": sliced}
    cases = {(name, str(dtype).removeprefix("torch.")): (fn, dtype)
             for name, fn in paths.items() for dtype in (torch.float32, torch.bfloat16)}
    inputs = {key: [torch.randn(s, dtype=dtype, requires_grad=True) for s in (q_shape, shape, shape)]
              for key, (_, dtype) in cases.items()}
    grad = torch.randn(q_shape)

    def step(key):
        fn, dtype = cases[key]
        fn(*inputs[key]).backward(grad.to(dtype))

    best = interleaved({key: (lambda key=key: step(key)) for key in cases}, args.repeats)
    print(f"attention forward + backward, (B, H, T, d) = {shape}, {q_shape[2]} queries a row, "
          f"{args.threads} thread(s), best of {args.repeats}")
    for (name, dtype), seconds in best.items():
        print(f"  {name:<26}{dtype:<10}{seconds * 1000:8.1f} ms")
    ours = "ctrkit attention()"
    for dtype in ("float32", "bfloat16"):
        print(f"{dtype}: ctrkit's path is {best['fused', dtype] / best[ours, dtype]:.1f}x the fused kernel's speed, "
              f"{best['explicit', dtype] / best[ours, dtype]:.1f}x the explicit path's over the whole batch")
    if not args.queries:  # AutoInt's and the lookup's figures belong to the default (AutoInt) shape
        autoint_layers(args.batch, args.repeats)
        lookup(args.batch, args.repeats)


if __name__ == "__main__":
    main()
