"""Repeated auctions under a budget (chapter 10): the simulator, and the best any bidder could have done.

A campaign with a daily budget B meets the day's impressions one at a time.
Impression i is worth v_i (expected clicks or conversions: pCTR, or pCTCVR ×
value per conversion) and has a market price p_i, the highest competing bid.
:func:`run_auctions` plays the day in order against a bidder (any object with
``bid(value) -> float`` and ``observe(won, cost)``):

- **second price** (``rule="second"``, Vickrey 1961): we win when our bid is at
  least the price *and* the remaining budget covers the price, and we pay the price;
- **first price** (``rule="first"``): we win when our bid is at least the price
  and the remaining budget covers our bid, and we pay our bid.

Ties (bid = price) go to us. Spend can never exceed the budget: an auction
whose payment would is lost, and the day goes on.

:func:`hindsight_optimum` is the benchmark every bidder is scored against: the
most value any policy could win knowing the whole day in advance,

    max Σ v_i x_i   s.t.   Σ p_i x_i ≤ B,   0 ≤ x_i ≤ 1,

a fractional knapsack (Dantzig 1957), solved exactly by taking impressions in
decreasing order of value per cost v_i / p_i until the budget is spent. The
value per cost of the last one taken, λ*, is the optimal dual price of the
budget: the optimum wins exactly the auctions with v_i / p_i ≥ λ*, which a
bidder achieves in a second-price auction by bidding v_i / λ* (chapter 10; the
dual-pacing bidder of :mod:`ctrkit.bidding.pacing` learns λ online). Relaxing
x_i to [0, 1] makes this an upper bound on what whole impressions can win; the
greedy integral solution (every impression before the last one) is reported too,
and the two differ by at most one impression's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

from ctrkit.errors import DataError

RULES = ("second", "first")


class Bidder(Protocol):
    """What :func:`run_auctions` needs: a bid for an impression's value, then the outcome of that auction."""

    def bid(self, value: float) -> float: ...

    def observe(self, won: bool, cost: float) -> None: ...


def check_day(values, prices, budget: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """values and prices as float arrays of equal length, finite and non-negative; budget ≥ 0 when given."""
    v = np.asarray(values, dtype=np.float64)
    p = np.asarray(prices, dtype=np.float64)
    if v.ndim != 1 or p.ndim != 1 or len(v) != len(p):
        raise DataError(f"values and prices must be 1-d arrays of equal length, got shapes {v.shape} and {p.shape}")
    for name, a in (("values", v), ("prices", p)):
        if not np.isfinite(a).all() or (a < 0).any():
            raise DataError(f"{name} must be finite and non-negative (row {int(np.argmax(~np.isfinite(a) | (a < 0)))})")
    if budget is not None and not (np.isfinite(budget) and budget >= 0):
        raise DataError(f"budget must be a finite number >= 0, got {budget}")
    return v, p


@dataclass
class Hindsight:
    """The fractional-knapsack optimum of a day (see :func:`hindsight_optimum`).

    ``x`` is the share of each impression taken (1 for all but at most one,
    which is fractional, and 0 for the rest); ``threshold`` is λ*, the value
    per cost of the last impression taken (0 when the budget buys everything
    worth anything, ∞ when it buys nothing). ``greedy_value`` and ``greedy_spend``
    are the integral solution that keeps only the whole impressions.
    """

    value: float
    spend: float
    x: np.ndarray
    threshold: float
    greedy_value: float
    greedy_spend: float
    budget: float


def hindsight_optimum(values, prices, budget: float) -> Hindsight:
    """The most value any policy could win on this day within ``budget``, knowing every price in advance.

    Sorts impressions by v/p (free ones first) and takes them whole while the
    budget lasts, then the affordable share of the next one. Impressions worth
    nothing are never taken.
    """
    v, p = check_day(values, prices, budget)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p > 0, v / np.where(p > 0, p, 1.0), np.inf)
    ratio[v == 0] = 0.0
    order = np.argsort(-ratio, kind="stable")
    order = order[ratio[order] > 0]  # worth something
    cum = np.cumsum(p[order])
    whole = int(np.searchsorted(cum, budget, side="right"))  # the first `whole` fit entirely
    x = np.zeros(len(v))
    x[order[:whole]] = 1.0
    greedy_value, greedy_spend = float(v[order[:whole]].sum()), float(cum[whole - 1]) if whole else 0.0
    if whole < len(order):  # the budget ends inside impression order[whole]
        last = order[whole]
        x[last] = (budget - greedy_spend) / p[last]
        threshold = float(ratio[last])
    else:  # everything worth anything is affordable: the budget does not bind
        threshold = 0.0
    value = float(v @ x)
    return Hindsight(value, float(p @ x), x, threshold, greedy_value, greedy_spend, float(budget))


@dataclass
class AuctionResult:
    """A day played by :func:`run_auctions`: totals, and one entry per auction in each trace.

    ``value``: the value won, measured on the true values when they were given
    (the bidder may have bid on predictions); ``spend``: the total paid;
    ``wins``: the number of auctions won. Traces: ``bids``; ``lambdas``, the
    bidder's multiplier λ when it bid (its attribute ``lam``; NaN for a bidder
    without one); ``won``; ``costs`` (what each auction cost, 0 when lost); ``spent``
    (cumulative spend after each auction).
    """

    value: float
    spend: float
    wins: int
    budget: float
    rule: str
    bids: np.ndarray
    lambdas: np.ndarray
    won: np.ndarray
    costs: np.ndarray
    spent: np.ndarray

    def share_of(self, optimum: Hindsight | float) -> float:
        """The value won as a fraction of ``optimum`` (a :class:`Hindsight` or a number)."""
        best = optimum.value if isinstance(optimum, Hindsight) else float(optimum)
        return self.value / best if best > 0 else float("nan")

    @property
    def spend_share(self) -> float:
        """Spend as a fraction of the budget."""
        return self.spend / self.budget if self.budget > 0 else float("nan")

    def exhausted_at(self, tolerance: float = 1e-3) -> int | None:
        """The auction after which spend first came within ``tolerance`` (a share) of the budget, or None."""
        done = np.flatnonzero(self.spent >= self.budget * (1 - tolerance))
        return int(done[0]) if len(done) else None


def run_auctions(values, prices, bidder: Bidder, *, budget: float | None = None, rule: str = "second",
                 true_values=None, progress: bool = False) -> AuctionResult:
    """Play the day's auctions in order: ask ``bidder`` for a bid on each value, settle, tell it the outcome.

    ``budget``: the campaign's budget, which the simulator enforces (default:
    the bidder's own ``budget`` attribute). ``rule``: ``"second"`` or
    ``"first"`` price (module docstring). ``true_values``: what each impression
    is really worth, when the bidder bids on predictions (``values``): the
    result's value is then measured on the truth, which is how miscalibrated
    predictions show their price. One Python step per auction: under a second
    per 100,000 auctions with :class:`~ctrkit.bidding.pacing.DualPacingBidder`.
    """
    if rule not in RULES:
        raise DataError(f"rule must be one of {RULES}, got {rule!r}")
    if budget is None:
        budget = getattr(bidder, "budget", None)
        if budget is None:
            raise DataError("give the budget: run_auctions(..., budget=...) or a bidder with a budget attribute")
    v, p = check_day(values, prices, budget)
    truth = v if true_values is None else check_day(true_values, p)[0]
    n = len(v)
    bids, lambdas, costs = np.zeros(n), np.full(n, np.nan), np.zeros(n)
    won = np.zeros(n, dtype=bool)
    first = rule == "first"
    remaining = float(budget)
    slack = 1e-12 * max(float(budget), 1.0)  # float rounding: spend may reach the budget exactly
    for i in tqdm(range(n), desc="auctions", disable=not progress, mininterval=0.5):
        b = float(bidder.bid(float(v[i])))
        lambdas[i] = getattr(bidder, "lam", np.nan)
        if not b >= 0 or not np.isfinite(b):
            raise DataError(f"the bidder bid {b} at auction {i}: bids must be finite and >= 0")
        pay = b if first else p[i]
        win = b >= p[i] and pay <= remaining + slack
        if win:
            pay = min(pay, remaining)
            remaining -= pay
            costs[i] = pay
            won[i] = True
        bids[i] = b
        bidder.observe(win, costs[i])
    spent = np.cumsum(costs)
    return AuctionResult(float(truth[won].sum()), float(spent[-1]) if n else 0.0, int(won.sum()), float(budget), rule,
                         bids, lambdas, won, costs, spent)
