"""Attention kernel benchmark: the fused ``scaled_dot_product_attention`` against the explicit softmax, fp32 and bf16.

    python benchmarks/attention.py                  # AutoInt's shape: B=4096, 2 heads, 39 tokens, head width 8
    python benchmarks/attention.py --heads 1 --width 16 --tokens 40 --queries 1   # the Transformer's [CLS] readout

Prints the best of ``--repeats`` forward + backward times of each path and
precision, interleaved (one round of every path, then the next round), on
``--threads`` CPU threads: the fused kernel, the explicit softmax over the whole
batch, and ctrkit's :func:`ctrkit.models.attention.attention`, which on the CPU
takes the explicit path over ``CPU_ROWS`` rows of the batch at a time, so that
each slice's weights stay in the cache between the operations that read them
(and the fused kernel for an fp32 readout of one query a row).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ctrkit.models.attention import attention


def explicit(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1) @ v


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def sliced(q, k, v):
    return attention(q, k, v)[0]


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
        start = time.perf_counter()
        fn(*inputs[key]).backward(grad.to(dtype))
        return time.perf_counter() - start

    for key in cases:  # warm-up
        step(key)
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        for key in cases:
            best[key] = min(best[key], step(key))
    print(f"attention forward + backward, (B, H, T, d) = {shape}, {q_shape[2]} queries a row, {args.threads} thread(s), best of {args.repeats}")
    for (name, dtype), seconds in best.items():
        print(f"  {name:<26}{dtype:<10}{seconds * 1000:8.1f} ms")
    ours = "ctrkit attention()"
    for dtype in ("float32", "bfloat16"):
        print(f"{dtype}: ctrkit's path is {best['fused', dtype] / best[ours, dtype]:.1f}x the fused kernel's speed, "
              f"{best['explicit', dtype] / best[ours, dtype]:.1f}x the explicit path's over the whole batch")


if __name__ == "__main__":
    main()
