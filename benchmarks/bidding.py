"""Budget pacing on chapter 10's days of auctions: each bidder's share of the hindsight optimum, its spend against the
budget, and the time it takes.

    python benchmarks/bidding.py                               # 100,000 auctions a day, 3 seeds
    python benchmarks/bidding.py --auctions 20000 --seeds 0 --budgets 0.1
    python benchmarks/bidding.py --rule first                  # the same bids, paid at first price

Days come from :func:`ctrkit.bidding.auction_days`: per seed, yesterday and today of one world of the synthetic
twin (values: true pCTR, mean 3 %; prices: the highest competing bid), both **stationary** (the twin's rows
shuffled over the day) and with a **daily cycle** (the twin's traffic and CTR cycle, and competition peaking at
14:00). Budgets are shares of the cost of winning every auction of today (``--budgets``). Every bidder sees today's
auctions in order and may use yesterday's log; the expected number of auctions it is told is ``--auctions`` (the
cycle day's real count differs slightly). The miscalibrated days (``--miscalibration``) are the stationary days
bid on today's values times a factor, as after deploying a model that over- or under-predicts, and scored on the
true values; yesterday's log holds the true values. Bidders:

- no pacing: bid value / λ with λ = Σ v / Σ p of yesterday (what the market charged per click on average),
  until the budget runs out;
- static λ*: bid value / λ* with λ* the hindsight optimum's threshold on yesterday at the same budget per
  auction (what would be optimal if today were yesterday), never adjusted;
- pacer, cold start: :class:`ctrkit.bidding.DualPacingBidder` with its defaults and no history;
- pacer, from yesterday's λ*: the default settings, starting from yesterday's λ* (``history=``): what chapter 10 recommends;
- pacer, history plan: also following yesterday's optimal spend over the day (``plan="history"``);
- pacer, step s: the default pacer with another step (``--steps``), to show why the default is 0.25.

Each cell is the mean over seeds of the value won / the hindsight optimum and of spend / budget, and, when the
budget ran out before 23:00, the mean hour it did (out hh:mm). Timings are seconds per 100,000 auctions, the
simulator included, on one core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=100_000, help="auctions per day")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.02, 0.1, 0.3],
                        help="budgets as shares of the cost of winning everything")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=float, nargs="*", default=[0.1, 1.0, 2.0], help="other pacer steps to show")
    parser.add_argument("--miscalibration", type=float, nargs="*", default=[1.3, 0.7],
                        help="stationary days bid on today's values times each factor (scored on the truth)")
    parser.add_argument("--rule", choices=["second", "first"], default="second")
    args = parser.parse_args()

    from ctrkit import bidding

    started = time.perf_counter()
    stationary = {seed: bidding.auction_days(args.auctions, 2, seed=seed) for seed in args.seeds}
    _table("stationary day", stationary, 1.0, args)
    for factor in args.miscalibration:
        _table(f"stationary day, today's predictions x {factor:g} (yesterday's were calibrated)", stationary, factor,
               args)
    cycle = {seed: bidding.auction_days(args.auctions, 2, cycle=True, seed=seed) for seed in args.seeds}
    _table("daily cycle day", cycle, 1.0, args)
    print(f"\nbenchmark ran in {time.perf_counter() - started:.0f} s")


def _table(kind: str, days: dict, factor: float, args) -> None:
    """One table: every bidder at every budget, averaged over the seeds' days (bids on values x factor)."""
    from ctrkit import bidding

    cells: dict[str, dict[float, list]] = {}
    seconds: dict[str, list] = {}
    thresholds = {b: [] for b in args.budgets}
    for yesterday, today in days.values():
        history = (yesterday.values, yesterday.prices)
        for share in args.budgets:
            budget = share * today.cost_of_everything
            best = bidding.hindsight_optimum(today.values, today.prices, budget)
            thresholds[share].append(best.threshold)
            for name, bidder in _bidders(budget, args.auctions, history, args.steps).items():
                start = time.perf_counter()
                result = bidding.run_auctions(today.values * factor, today.prices, bidder, budget=budget,
                                              rule=args.rule, true_values=today.values)
                seconds.setdefault(name, []).append((time.perf_counter() - start) * 1e5 / len(today))
                dry = result.exhausted_at()
                out = today.seconds[dry] / 3_600 if dry is not None else np.nan
                run = (result.share_of(best), result.spend_share, out)
                cells.setdefault(name, {}).setdefault(share, []).append(run)
    print(f"\n{kind}, {args.auctions:,} auctions, {args.rule} price, seeds {args.seeds}: "
          "value / hindsight optimum, spend / budget")
    print(f"{'bidder':<28}" + "".join(f"{f'budget {100 * b:g}%':>28}" for b in args.budgets) + f"{'s/100k':>8}")
    print(f"{'(hindsight λ*)':<28}" + "".join(f"{np.mean(thresholds[b]):>28.3g}" for b in args.budgets))
    for name, by_budget in cells.items():
        row = "".join(f"{_cell(np.array(by_budget[b])):>28}" for b in args.budgets)
        print(f"{name:<28}{row}{np.mean(seconds[name]):>8.2f}")


def _bidders(budget: float, n: int, history: tuple, steps) -> dict:
    from ctrkit import bidding

    values, prices = history
    static = bidding.history_multiplier(values, prices, budget / n)
    bidders = {
        "no pacing (market average)": bidding.ConstantBidder(values.sum() / prices.sum()),
        "static λ* of yesterday": bidding.ConstantBidder(static),
        "pacer, cold start": bidding.DualPacingBidder(budget, n),
        "pacer, from yesterday's λ*": bidding.DualPacingBidder(budget, n, history=history),
        "pacer, history plan": bidding.DualPacingBidder(budget, n, history=history, plan="history"),
    }
    for step in steps:
        bidders[f"pacer, step {step:g}"] = bidding.DualPacingBidder(budget, n, history=history, step=step)
    return bidders


def _cell(runs: np.ndarray) -> str:
    """'97.7%  99.9%' (value share, spend share) and ' out 07:40' when the budget ran out before 23:00 on average."""
    text = f"{100 * runs[:, 0].mean():5.1f}% {100 * runs[:, 1].mean():5.1f}%"
    out = np.nan_to_num(runs[:, 2], nan=24.0).mean()
    return text + (f" out {int(out):02d}:{int(60 * (out % 1)):02d}" if out < 23 else " " * 10)


if __name__ == "__main__":
    main()
