"""Model benchmark: every ctrkit model on the synthetic twin with the same budget (chapters 03-05).

    python benchmarks/models.py                      # six models x 3 seeds x 2 worlds, LightGBM if installed
    python benchmarks/models.py --models lr deepfm --seeds 0 --worlds 0
    python benchmarks/models.py --bf16 --compile     # + the Transformer with CPU bf16 autocast, torch.compile
    python benchmarks/models.py --ablation           # chapter 04's ablation: the Transformer's levers, one at a time
    PYTHONPATH=/tmp/peers python benchmarks/models.py --peers --models deepfm autoint

Prints, per world and model, test AUC and logloss (mean ± std over seeds), the
gap to the Bayes-optimal AUC of the same test rows (the ceiling no model can
pass), training and inference samples/s (inference at batch 4096), parameters
and peak RSS. Each model runs in its own process, so peak RSS is its own. Models
and training settings come from ``configs/<name>.yaml``, unchanged in every
world. World 0 is ``synthetic_criteo(rows, seed=0)``, world 1
``synthetic_criteo(rows, seed=1, base_rate=0.03)`` (other interactions, a 3 %
base rate); each is split 80/10/10 at random and preprocessed with the defaults.
``--json`` writes every figure; chapters 04 and 05 read the committed copies in
``ctrkit/results/`` (``--json ctrkit/results/models.json``, ``--ablation --json
ctrkit/results/ablation.json``).

``--peers`` installs nothing: when ``deepctr_torch`` is importable (a throwaway
``pip install --no-deps --target /tmp/peers deepctr-torch``), its DeepFM and
AutoInt train on the same tensors with the same embedding size, MLP sizes and
batch size, taking turns (five epochs and five test passes each, in a rotating
order), and the best samples/s and the median of the rounds' ratios are printed
(``benchmarks/peers_floor.py`` adds a lean model of each: how far an eager
implementation can go). LightGBM (``pip install
lightgbm``, in the book's extra) is the non-neural reference, on the same preprocessed columns with
the categorical ids as categorical features (``ctrkit.models.gbdt``, as chapter 03 trains it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ["lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"]
WORLDS = {0: {"seed": 0}, 1: {"seed": 1, "base_rate": 0.03}}
# chapter 04's ablation: ctrkit 0.1's Transformer (2 blocks, 2 heads, FFN, [CLS] readout) and each lever alone on it,
# as changes to configs/transformer.yaml; the default itself is the table's "transformer" row (same data and seeds)
OLD = {"n_layers": 2, "n_heads": 2, "ffn_mult": 2.0, "pooling": "cls", "field_proj": False, "cross": 0}
ABLATION = {
    "0.1 (2 blocks, 2 heads, FFN)": OLD,
    "+ concat readout": OLD | {"pooling": "concat"},
    "+ per-field Q/K/V": OLD | {"field_proj": True},
    "+ parallel MLP (256, 128)": OLD | {"deep": (256, 128)},
    "+ parallel cross (2 layers)": OLD | {"cross": 2},
    "+ 1 block, 1 head, no FFN": OLD | {"n_layers": 1, "n_heads": 1, "ffn_mult": 0.0},
}


def load_data(rows: int, world: int = 0, **preprocessing):
    from ctrkit.datasets import bayes_optimal_metrics, split, synthetic_criteo
    from ctrkit.preprocessing import CTRPreprocessor, CTRTensors

    train, val, test = split(synthetic_criteo(rows, **WORLDS[world]), seed=0)
    pre = CTRPreprocessor(**preprocessing).fit(train)
    frames = [pre.transform(p) for p in (train, val, test)]
    tensors = [CTRTensors.from_frame(f, pre.spec) for f in frames]
    return pre.spec, frames, tensors, bayes_optimal_metrics(test)


def _samples_per_s(fn, n: int, repeats: int = 3) -> float:
    best = min(_timed(fn) for _ in range(repeats))
    return n / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_ctrkit(name: str, rows: int, seeds: list[int], world: int = 0, amp: str | None = None,
               compile: bool = False, variant: str | None = None) -> dict:
    import torch

    from ctrkit.models import build
    from ctrkit.training import evaluate, fit, load_config, predict_logits

    config = load_config(ROOT / "configs" / f"{name}.yaml")
    hparams = config.hparams | (ABLATION[variant] if variant else {})
    spec, _, (train, val, test), bayes = load_data(rows, world)
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build(name, spec, **hparams)
        train_config = replace(config.train, seed=seed, progress=False, device="cpu", compile=compile,
                               **({"amp": amp} if amp else {}))
        history = fit(model, train, val, train_config)
        scores = evaluate(model, test, device="cpu", amp=train_config.amp)
        infer = _samples_per_s(lambda: predict_logits(model, test, 4096, "cpu", train_config.amp), len(test))
        runs.append({"seed": seed, **scores, "epochs": len(history), "best_epoch": history.attrs["best_epoch"],
                     "train_sps": float((history["samples_per_s"] * history["seconds"]).sum() / history["seconds"].sum()),
                     "infer_sps": infer, "final": history.attrs["final"]})
    label = variant or name + "".join(f" ({x})" for x in (amp, "compile" if compile else None) if x)
    return {"model": label, "world": world, "runs": runs, "bayes": bayes,
            "parameters": sum(p.numel() for p in model.parameters())}


def run_lightgbm(rows: int, seeds: list[int], world: int = 0) -> dict:
    from ctrkit import metrics
    from ctrkit.models.gbdt import fit_lightgbm, predict_lightgbm

    spec, (train, val, test), _, bayes = load_data(rows, world)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        model = fit_lightgbm(train, val, spec, seed=seed)
        seconds = time.perf_counter() - start
        p = predict_lightgbm(model, test, spec)
        infer = _samples_per_s(lambda: predict_lightgbm(model, test, spec), len(test))
        runs.append({"seed": seed, "auc": metrics.auc(test["click"], p), "logloss": metrics.logloss(test["click"], p),
                     "train_sps": len(train) / seconds,  # rows per second of the whole boosting run
                     "infer_sps": infer, "epochs": model.best_iteration_})
    return {"model": "lightgbm", "world": world, "runs": runs, "bayes": bayes, "parameters": 0}


PEER_ROWS = (("deepfm", "deepfm", {"dense_transform": "bins"}), ("autoint", "autoint", {"dense_transform": "bins"}),
             ("deepfm, raw numerics", "deepfm", {}), ("autoint, raw numerics", "autoint", {}))


def peer_pair(name: str, rows: int, batch_size: int = 4096, **preprocessing):
    """deepctr-torch's and ctrkit's ``name`` ("deepfm" or "autoint") at equal sizes, and how to time them.

    Returns a namespace: ``peer`` and ``mine`` (the two models), ``hparams`` (ctrkit's, as built), the tensors
    ``train``, ``val``, ``test``, and ``cases``: for "peer" and "ctrkit", an epoch of training at ``batch_size``
    (deepctr-torch's ``fit`` timed whole, ctrkit's training loop's own seconds) and a prediction of the test split
    at batch 4096. deepctr-torch reads the preprocessed frames as dicts of columns, ctrkit the tensors of the
    same rows.
    """
    from types import SimpleNamespace

    import torch
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import AutoInt as PeerAutoInt
    from deepctr_torch.models import DeepFM as PeerDeepFM

    from ctrkit.models import build
    from ctrkit.training import TrainConfig, fit, load_config, predict_logits

    spec, (train_df, _, test_df), (train, val, test), _ = load_data(rows, **preprocessing)
    hp = load_config(ROOT / "configs" / f"{name}.yaml").hparams
    dim = hp.get("embed_dim", 16)
    columns = [DenseFeat(d, 1) for d in spec.dense_names] + [SparseFeat(s.name, s.vocab_size, dim) for s in spec.sparse]
    names = list(spec.dense_names) + [s.name for s in spec.sparse]
    # the same MLP with the same dropout (deepctr-torch's default is none); each library its own embedding L2
    kwargs = dict(dnn_hidden_units=tuple(hp.get("hidden", (256, 128))), dnn_dropout=hp.get("dropout", 0.0),
                  device="cpu", seed=0)
    if name == "autoint":
        kwargs |= dict(att_layer_num=hp.get("n_layers", 3), att_head_num=hp.get("n_heads", 2))
        kwargs["dnn_hidden_units"] = tuple(hp.get("hidden", ())) or (256, 128)
        hp = hp | {"hidden": kwargs["dnn_hidden_units"]}
    peer = (PeerAutoInt if name == "autoint" else PeerDeepFM)(columns, columns, **kwargs)
    peer.compile("adam", "binary_crossentropy")
    torch.manual_seed(0)
    mine = build(name, spec, **hp)
    x_train, x_test = ({c: frame[c].to_numpy() for c in names} for frame in (train_df, test_df))
    y = train_df["click"].to_numpy()
    config = TrainConfig(epochs=1, batch_size=batch_size, progress=False, device="cpu", amp="off")
    cases = {"peer": (lambda: _timed(lambda: peer.fit(x_train, y, batch_size=batch_size, epochs=1, verbose=0)),
                      lambda: peer.predict(x_test, batch_size=4096)),
             "ctrkit": (lambda: float(fit(mine, train, val, config)["seconds"].iloc[0]),
                        lambda: predict_logits(mine, test, 4096, "cpu"))}
    return SimpleNamespace(peer=peer, mine=mine, hparams=hp, train=train, val=val, test=test, cases=cases)


def take_turns(cases: dict, n_train: int, n_test: int, rounds: int) -> dict:
    """Training and inference samples/s of several implementations of one model, taking turns.

    ``cases`` maps a name to ``(train, infer)``: ``train()`` trains one epoch and returns its seconds,
    ``infer()`` predicts the test split (timed here, best of three). In each of ``rounds`` rounds every case
    trains once and predicts, in an order that rotates from round to round. Returns, for "train" and "infer",
    each case's best samples/s and, against the first case, the median over the rounds of each round's ratio:
    a slow minute of a shared machine slows one round's cases alike, so the ratio of adjacent runs steadies
    what the best alone does not (two runs of the best-of ratios differed by a third on this machine).
    """
    import numpy as np

    keys = list(cases)
    seconds = {part: {key: [] for key in keys} for part in ("train", "infer")}
    for i in range(rounds):
        for key in keys[i % len(keys):] + keys[:i % len(keys)]:
            train, infer = cases[key]
            seconds["train"][key].append(train())
            seconds["infer"][key].append(min(_timed(infer) for _ in range(3)))
    out = {}
    for part, n in (("train", n_train), ("infer", n_test)):
        times = seconds[part]
        out[part] = {key: {"sps": n / min(times[key]),
                           "ratio": float(np.median(np.divide(times[keys[0]], times[key])))} for key in keys}
    return out


def run_peers(rows: int, batch_size: int = 4096, rounds: int = 5) -> dict:
    """deepctr-torch's DeepFM and AutoInt against ctrkit's on the same tensors: samples/s only.

    Equal sizes means the same fields too. deepctr-torch feeds numeric columns to its DNN and linear part only,
    so on raw numbers its AutoInt attends over the 26 categorical tokens while ctrkit's attends over all 39
    (numeric fields are tokens in ctrkit, as in the AutoInt paper), and its FM pairs 26 fields to ctrkit's 39.
    The rows named after the model bin the numeric fields into categorical ones (``dense_transform="bins"``),
    so both libraries see the same 39 categorical fields; the ", raw numerics" rows keep the default inputs.
    The two take turns (:func:`take_turns`): ``rounds`` epochs and test passes each, the ratios the median
    of the rounds' own.
    """
    out = {}
    for key, name, preprocessing in PEER_ROWS:
        pair = peer_pair(name, rows, batch_size, **preprocessing)
        turns = take_turns(pair.cases, len(pair.train), len(pair.test), rounds)
        # the keys main() prints and ctrkit.results.peers() reads
        out[key] = {f"{who}_{part}_sps": turns[part][who]["sps"] for who in ("peer", "ctrkit") for part in turns}
        out[key] |= {f"{part}_ratio": turns[part]["ctrkit"]["ratio"] for part in turns} | {"rounds": rounds}
    return out


def _child(args) -> None:
    sys.path.insert(0, str(HERE))
    from preprocessing import _peak_rss_mb

    import torch

    torch.set_num_threads(torch.get_num_threads())
    world = args.worlds[0]
    jobs = {"peers": lambda: {"peers": run_peers(args.rows)},
            "lightgbm": lambda: run_lightgbm(args.rows, args.seeds, world)}
    result = jobs.get(args.child, lambda: run_ctrkit(args.child, args.rows, args.seeds, world, args.amp, args.compile,
                                                     args.variant))()
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _spawn(kind: str, args, world: int = 0, amp: str | None = None, compile: bool = False,
           variant: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--rows", str(args.rows), "--seeds", *map(str, args.seeds),
           "--worlds", str(world)]
    cmd += (["--amp", amp] if amp else []) + (["--compile"] if compile else []) + (["--variant", variant] if variant else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(result: dict) -> str:
    import numpy as np

    runs = result["runs"]
    auc, ll = np.array([r["auc"] for r in runs]), np.array([r["logloss"] for r in runs])
    gap = result["bayes"]["auc"] - auc.mean()
    tr, inf = np.mean([r["train_sps"] for r in runs]), np.mean([r["infer_sps"] for r in runs])
    return (f"{result['model']:<32}{auc.mean():.4f} ± {auc.std():.4f}  {ll.mean():.4f} ± {ll.std():.4f}  {gap:8.4f}"
            f"  {tr:10,.0f}  {inf:11,.0f}  {result['parameters']:10,}  {result['peak_rss_mb']:7,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--worlds", type=int, nargs="+", choices=sorted(WORLDS), help="default: 0 1 (--ablation: 0)")
    parser.add_argument("--models", nargs="*", default=MODELS, choices=MODELS, help="none: --peers alone")
    parser.add_argument("--bf16", action="store_true", help="also train the Transformer with CPU bf16 (first world)")
    parser.add_argument("--compile", action="store_true", help="also train the Transformer compiled (first world)")
    parser.add_argument("--ablation", action="store_true", help="chapter 04's Transformer ablation instead of the table")
    parser.add_argument("--peers", action="store_true", help="speed against deepctr-torch (when importable)")
    parser.add_argument("--no-lightgbm", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--amp", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.worlds = args.worlds or ([0] if args.ablation else [0, 1])
    if args.child:
        return _child(args)

    import importlib.util

    if args.ablation:
        jobs = [("transformer", None, False, v) for v in ABLATION]
    else:
        jobs = [(m, None, False, None) for m in args.models]
        jobs += [("transformer", "bf16", False, None)] if args.bf16 else []
        jobs += [("transformer", None, True, None)] if args.compile else []
        if args.models and not args.no_lightgbm and importlib.util.find_spec("lightgbm"):
            jobs.append(("lightgbm", None, False, None))
    results = []
    for world in args.worlds if jobs else []:
        if world != args.worlds[0]:  # bf16 and compile are speed questions: the first world answers them
            jobs = [job for job in jobs if not (job[1] or job[2])]
        print(f"world {world}: synthetic_criteo({args.rows:,}, {', '.join(f'{k}={v}' for k, v in WORLDS[world].items())})"
              f", 80/10/10, seeds {args.seeds}; one process per model")
        print(f"{'model':<32}{'test AUC':<17}{'test logloss':<17}{'Bayes gap':>9}  {'train/s':>10}  {'infer/s':>11}"
              f"  {'params':>10}  {'peak RSS':>10}")
        for kind, amp, compile, variant in jobs:
            results.append(_spawn(kind, args, world, amp, compile, variant))
            print(_row(results[-1]), flush=True)
        bayes = results[-1]["bayes"]
        print(f"{'Bayes-optimal (truth)':<32}{bayes['auc']:.4f}            {bayes['logloss']:.4f}\n")
    if args.peers:
        if importlib.util.find_spec("deepctr_torch") is None:
            print("--peers: deepctr_torch is not importable; install it in a throwaway place (see the docstring)")
        else:
            peers = _spawn("peers", args)["peers"]
            results.append({"peers": peers})
            for name, r in peers.items():
                print(f"vs deepctr-torch {name:<22} {r['rounds']:.0f} rounds taking turns, best samples/s, median "
                      f"ratio: train "
                      f"{r['ctrkit_train_sps']:,.0f} vs {r['peer_train_sps']:,.0f} samples/s = {r['train_ratio']:.2f}x; "
                      f"inference {r['ctrkit_infer_sps']:,.0f} vs {r['peer_infer_sps']:,.0f} = {r['infer_ratio']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
