"""Bandit policies on problems with a known truth (chapter 10): cumulative regret over seeds, and time per policy.

    python benchmarks/bandits.py                              # 10 arms x 10,000 rounds x 5 seeds, and the twin
    python benchmarks/bandits.py --rounds 20000 --seeds 0 1 2 --horizons 1000 10000 20000 --no-twin

Three problems, each played by every policy on the same clicks per seed
(common random numbers, :func:`ctrkit.bandits.simulate`):

- contextual: :func:`ctrkit.bandits.logistic_problem` (dim 6: five standard normal features and a constant, CTRs
  5% on average, the best arm depending on the context), a fresh problem per seed;
- context-free: :func:`ctrkit.bandits.bernoulli_problem` (fixed CTRs, 5% on average, logit spread 1), per seed;
- twin (``--no-twin`` skips it): :func:`ctrkit.ope.twin_bandit` with ``--arms`` candidate ads per request and a
  ctrkit transformer trained on 20,000 rows of history; the contextual policies read the transformer's last
  hidden layer of each candidate (:func:`ctrkit.bandits.last_hidden`, 64 numbers) with one model shared by all
  candidates, and the reference line is the transformer's own greedy choice (argmax of its logits). One twin for
  every seed (trained with seed 0); the seeds change the clicks and the policies.

NeuralLinearThompson is timed on the contextual problem's raw features and on the twin's hidden layer; it is
the only policy whose per-round cost grows with dim³ (a Cholesky factorisation per update). Timings are wall
seconds for every seed of one policy (problem generation included), on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np


def _policies(shared: bool = False) -> dict:
    from ctrkit import bandits

    contextual = {"LinUCB": bandits.LinUCB, "LogisticThompson": bandits.LogisticThompson,
                  "NeuralLinearThompson": bandits.NeuralLinearThompson}
    return {"UniformRandom": bandits.UniformRandom, "EpsilonGreedy": bandits.EpsilonGreedy,
            "BetaBernoulliThompson": bandits.BetaBernoulliThompson,
            **{name: functools.partial(cls, shared=shared) for name, cls in contextual.items()}}


def _run(policies: dict, problem, seeds, horizons, floor=None):
    """Every policy on the problem (timed), the regret table printed as mean ± std, and the timings returned."""
    import pandas as pd

    from ctrkit import bandits

    frames, seconds = [], {}
    for name, make in policies.items():
        start = time.perf_counter()
        frames.append(bandits.compare({name: make}, problem, seeds))
        seconds[name] = time.perf_counter() - start
    runs = pd.concat(frames, ignore_index=True)
    table = bandits.regret_table(runs, horizons)
    cells = {f"T={h:,}": [f"{m:8.1f} ± {s:6.1f}" for m, s in zip(table[(h, "mean")], table[(h, "std")])]
             for h in horizons}
    shown = pd.DataFrame(cells, index=table.index)
    if floor is not None:
        shown.loc[floor[0]] = [f"{np.mean(floor[1][:, h - 1]):8.1f} ± {np.std(floor[1][:, h - 1], ddof=1):6.1f}"
                               for h in horizons]
    print(shown.to_string())
    last = runs[runs.t == max(horizons)].pivot(index="policy", columns="seed", values="cumulative_regret")
    print(f"  per seed at T={max(horizons):,}:")
    print(last.loc[list(policies)].round(0).to_string())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--dim", type=int, default=6, help="contextual problem: features, the constant included")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--horizons", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--no-twin", action="store_true", help="skip the twin with a transformer's hidden layer")
    args = parser.parse_args()

    from ctrkit import bandits

    started = time.perf_counter()
    T, K, seeds = args.rounds, args.arms, args.seeds
    horizons = sorted(h for h in args.horizons if h <= T)
    timings = {}

    contextual = functools.partial(bandits.logistic_problem, T, n_actions=K, dim=args.dim)
    floor = np.array([bandits.best_arm_regret(contextual(seed=s).mean_rewards) for s in seeds])
    print(f"contextual: logistic_problem(T={T:,}, K={K}, dim={args.dim}), cumulative regret, mean ± std over "
          f"{len(seeds)} seeds")
    timings["contextual"] = _run(_policies(), contextual, seeds, horizons, ("(best single arm)", floor))

    flat = functools.partial(bandits.bernoulli_problem, T, n_actions=K)
    print(f"\ncontext-free: bernoulli_problem(T={T:,}, K={K}), cumulative regret, mean ± std over {len(seeds)} seeds")
    timings["context-free"] = _run(_policies(), flat, seeds, horizons)

    if not args.no_twin:
        timings["twin"] = _twin(T, K, seeds, horizons)

    print(f"\nseconds per policy, {K} arms x {T:,} rounds x {len(seeds)} seeds (problem generation included)")
    print(f"  {'policy':<24}" + "".join(f"{problem:>14}" for problem in timings))
    for name in timings["contextual"]:
        print(f"  {name:<24}" + "".join(f"{t[name]:14.1f}" for t in timings.values()))
    print(f"\nbenchmark ran in {time.perf_counter() - started:.0f} s")


def _twin(T: int, K: int, seeds, horizons) -> dict:
    """The twin with a transformer's last hidden layer per candidate as features (see the module docstring)."""
    from ctrkit import bandits, ope

    start = time.perf_counter()
    twin = ope.twin_bandit(T, n_candidates=K, history=20_000, seed=0, models={"transformer": ("transformer", {})})
    traffic = twin.tensors(twin.traffic)
    hidden = bandits.last_hidden(twin.models["transformer"], traffic.x_dense, traffic.x_sparse).reshape(T, K, -1)
    q = twin.expected_reward  # (T, K)
    problem = bandits.BanditProblem(hidden, q, "twin")
    greedy = twin.logits["transformer"].argmax(axis=1)
    floor = np.tile(np.cumsum(q.max(axis=1) - q[np.arange(T), greedy]), (len(seeds), 1))  # no randomness: std 0
    print(f"\ntwin: {T:,} requests x {K} candidates (mean CTR {q.mean():.3f}, best candidate's {q.max(1).mean():.3f}),"
          f" transformer trained and {hidden.shape[2]} hidden features read in {time.perf_counter() - start:.0f} s")
    return _run(_policies(shared=True), problem, seeds, horizons, ("(transformer, greedy)", floor))


if __name__ == "__main__":
    main()
