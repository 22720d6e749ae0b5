"""Interpretation benchmark: the time of each method of ``ctrkit.interpret`` at the chapter 07 sizes.

    python benchmarks/interpret.py                 # the default model (configs/transformer.yaml)
    python benchmarks/interpret.py --model deepfm --rows 1000

The model is trained for one epoch on the synthetic twin (timings do not depend
on how well it is trained). Each method runs once after a small warm-up call, so
numba's compilation of UMAP and captum's first-call overhead are reported apart.
Target (issue 5): Integrated Gradients on 1,000 rows × 50 steps in under 60 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer", help="a config name in configs/ (default transformer)")
    parser.add_argument("--rows", type=int, default=1000, help="rows to explain with IG and SHAP")
    parser.add_argument("--steps", type=int, default=50, help="IG steps")
    args = parser.parse_args()

    import torch

    from ctrkit import interpret
    from ctrkit.datasets import split, synthetic_criteo
    from ctrkit.models import build
    from ctrkit.preprocessing import CTRPreprocessor, CTRTensors
    from ctrkit.training import TrainConfig, fit, load_config

    config = load_config(ROOT / "configs" / f"{args.model}.yaml")
    train, val, _ = split(synthetic_criteo(40_000, seed=0), seed=0)
    pre = CTRPreprocessor().fit(train)
    t, v = (CTRTensors.from_frame(pre.transform(part), pre.spec) for part in (train, val))
    torch.manual_seed(0)
    model = build(config.model, pre.spec, **config.hparams)
    fit(model, t, v, TrainConfig(epochs=1, progress=False, device="cpu"))
    n = args.rows
    x_dense, x_sparse = v.x_dense[:n], v.x_sparse[:n]
    background = CTRTensors(t.x_dense[:200], t.x_sparse[:200])
    print(f"model {args.model}, torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}")

    def timed(name: str, fn, warm=None):
        first = ""
        if warm is not None:  # imports and compilation, reported apart
            start = time.perf_counter()
            warm()
            first = f"   (first call {time.perf_counter() - start:.1f} s)"
        start = time.perf_counter()
        fn()
        print(f"{name:52s} {time.perf_counter() - start:6.2f} s{first}")

    timed(f"integrated gradients, {n:,} rows x {args.steps} steps", lambda: interpret.integrated_gradients(
        model, x_dense, x_sparse, n_steps=args.steps), warm=lambda: interpret.integrated_gradients(
        model, x_dense[:8], x_sparse[:8], n_steps=4))
    shap_rows = min(n, 200)
    timed(f"SHAP GradientExplainer, {shap_rows} rows x 50 samples", lambda: interpret.shap_values(
        model, x_dense[:shap_rows], x_sparse[:shap_rows], background, n_samples=50), warm=lambda: interpret.shap_values(
        model, x_dense[:2], x_sparse[:2], background, n_samples=2))
    timed("SHAP KernelExplainer, 5 rows x 2,048 coalitions", lambda: interpret.kernel_shap(
        model, x_dense[:5], x_sparse[:5], reference=background))
    timed("permutation importance, 5,000 rows x 39 fields x 2", lambda: interpret.permutation_importance(
        model, CTRTensors(v.x_dense[:5000], v.x_sparse[:5000], v.y[:5000]), n_repeats=2))
    if config.model in ("transformer", "autoint"):
        timed(f"attention maps, {n:,} rows", lambda: interpret.attention_maps(model, x_dense, x_sparse))
    timed("UMAP of C2's embeddings (values seen >= 5 times)", lambda: interpret.embedding_umap(
        model, "C2", t.x_sparse, t.y, min_count=5), warm=lambda: interpret.embedding_umap(
        model, "C6", t.x_sparse, t.y, min_count=1, n_neighbors=5))
    timed("UMAP of 2,000 rows' representations", lambda: interpret.representation_umap(
        model, v.x_dense[:2000], v.x_sparse[:2000]))


if __name__ == "__main__":
    main()
