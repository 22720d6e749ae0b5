"""Attention kernel benchmark: the fused ``scaled_dot_product_attention`` against the explicit softmax, fp32 and bf16.

    python benchmarks/attention.py                  # AutoInt's shape: B=4096, 2 heads, 39 tokens, head width 8
    python benchmarks/attention.py --heads 1 --width 16 --threads 1

Prints the best of ``--repeats`` forward + backward times of each path and
precision, interleaved (one round of every path, then the next round), on
``--threads`` CPU threads. :func:`ctrkit.models.attention.attention` takes the
explicit path under CPU bf16 because of what this prints on a CPU with
AVX-512 BF16: the fused kernel's bf16 backward is slower than its fp32 one, the
explicit path's bf16 matrix multiplies run as batched oneDNN kernels, and fp32
``bmm`` of such small matrices loops over the batch.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def explicit(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1) @ v


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=39)
    parser.add_argument("--width", type=int, default=8, help="head width d")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (args.batch, args.heads, args.tokens, args.width)
    cases = {(name, str(dtype).removeprefix("torch.")): (fn, dtype)
             for name, fn in (("fused", fused), ("explicit", explicit)) for dtype in (torch.float32, torch.bfloat16)}
    inputs = {key: [torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3)]
              for key, (_, dtype) in cases.items()}
    grad = torch.randn(shape)

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
    print(f"attention forward + backward, (B, H, T, d) = {shape}, {args.threads} thread(s), best of {args.repeats}")
    for (name, dtype), seconds in best.items():
        print(f"  {name:<9}{dtype:<10}{seconds * 1000:8.1f} ms")
    print(f"explicit bf16 is {best['fused', 'float32'] / best['explicit', 'bfloat16']:.1f}x the fused fp32 path, "
          f"{best['fused', 'bfloat16'] / best['explicit', 'bfloat16']:.1f}x the fused bf16 path")


if __name__ == "__main__":
    main()
