"""Off-policy estimators on the twin bandit (chapter 09): bias, standard deviation and RMSE against the exact value,
and the time per estimate at n = 1,000,000 rounds.

    python benchmarks/ope.py                                  # chapter 09's CPU setting
    python benchmarks/ope.py --requests 100000 --repetitions 200

The setting is chapter 09's: :func:`ctrkit.ope.twin_bandit` (a logistic regression "old" and a DeepFM "new" model
trained on 100,000 rows of history), a logging policy softmax(old logits / 0.25), a target policy
softmax(new logits / 0.5), and a logistic-regression reward model trained on 20,000 rounds of the previous week's log. Every estimator
runs on ``--repetitions`` fresh logs per size (requests redrawn too); the truth is the target policy's exact value.
The timing part tiles this week's requests to ``--timing-rounds`` rounds and reports the best of 3 runs of each
estimator (input checks included), and one bootstrap resample of DR.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per week (two weeks are simulated)")
    parser.add_argument("--repetitions", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000], help="log sizes besides a full week")
    parser.add_argument("--timing-rounds", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pandas as pd

    from ctrkit import ope

    started = time.perf_counter()
    n, seed = args.requests, args.seed
    bandit = ope.twin_bandit(2 * n, seed=seed)
    logging, target = ope.softmax_policy(bandit.logits["old"], 0.25), ope.softmax_policy(bandit.logits["new"], 0.5)
    last, this = slice(0, n), slice(n, 2 * n)
    P = bandit.expected_reward
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, 20_000), replace=False))  # spread over the week
    last_log = ope.simulate_log(P[last][sample], logging[last][sample], random_state=seed + 1)
    reward_model = bandit.train("lr", bandit.logged(sample, last_log), epochs=3)
    Q = bandit.predict(reward_model, bandit.candidates(np.arange(n, 2 * n))).reshape(n, -1, 1)
    print(f"twin bandit: {2 * n:,} requests x {bandit.n_candidates} candidates, models and reward model trained in "
          f"{time.perf_counter() - started:.0f} s; target value {ope.policy_value(target[this], P[this]):.4f}, "
          f"logging value {ope.policy_value(logging[this], P[this]):.4f}")

    estimators = {"DM": ope.dm, "IPS": ope.ips, "IPS (clip 10)": functools.partial(ope.ips, clip=10.0),
                  "SNIPS": ope.snips, "DR": ope.dr, "SNDR": ope.sndr,
                  "Switch-DR (tau 2)": functools.partial(ope.switch_dr, tau=2.0),
                  "DR-OS (lambda 10)": functools.partial(ope.dr_os, lambda_=10.0)}
    sizes = sorted({*args.sizes, n})
    runs = ope.repeat_estimates(P[this], logging[this], target[this], estimators, sizes, args.repetitions, Q,
                                random_state=seed, progress=True)
    table = ope.error_table(runs)
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(f"\nbias, std and RMSE against the exact value, {args.repetitions} repetitions per size")
        print(table.unstack(0).swaplevel(axis=1).sort_index(axis=1, level=0).round(4).to_string())

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, args.timing_rounds)
    log = ope.simulate_log(P[this][rows], logging[this][rows], random_state=seed)
    arrays = dict(log.kwargs, action_dist=target[this][rows], estimated_rewards_by_reg_model=Q[rows])
    print(f"\ntime per estimate at n = {args.timing_rounds:,} rounds x {bandit.n_candidates} actions (best of 3)")
    for name, estimator in estimators.items():
        seconds = min(_timed(lambda: estimator(**arrays)) for _ in range(3))
        print(f"  {name:<20} {1e3 * seconds:8.1f} ms")
    seconds = _timed(lambda: ope.bootstrap_ci(ope.dr, n_bootstrap_samples=5, random_state=seed, **arrays)) / 6
    print(f"  {'DR bootstrap':<20} {1e3 * seconds:8.1f} ms per resample")
    print(f"\nbenchmark ran in {time.perf_counter() - started:.0f} s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
