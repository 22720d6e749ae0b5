"""Budget pacing by online dual descent (chapter 10): bid value / λ and learn λ from the spend.

The campaign wants as much value (expected clicks or conversions) as a budget
B buys over a day of n auctions. Relaxed with a multiplier λ ≥ 0 on the budget,

    L(x, λ) = Σ_i v_i x_i − λ (Σ_i p_i x_i − B) = λB + Σ_i x_i (v_i − λ p_i),

each auction separates: win it iff v_i ≥ λ p_i, i.e. iff v_i / p_i ≥ λ. In a
second-price auction (price p_i, pay p_i) bidding ``v_i / λ`` does exactly
that, so one number λ (value per unit of money) turns a pCTR into a bid; the
best λ is the hindsight optimum's threshold λ* (:func:`ctrkit.bidding.hindsight_optimum`).
λ is not known in advance. :class:`DualPacingBidder` learns it online with a
(sub)gradient step on the dual: the dual's gradient at auction t is the
budget's slack, ρ_t − cost_t, where ρ_t is what the spend plan allows for this
auction, so spending faster than the plan raises λ (bids fall) and spending
slower lowers it (Balseiro & Gur 2019, "Learning in repeated auctions with
budgets"; Balseiro, Lu & Mirrokni 2023, "The best of many worlds: dual mirror
descent for online allocation problems"; Agrawal & Devanur 2015).

**The step is multiplicative**, on log λ (mirror descent with an entropic
mirror map):

    log λ ← log λ + η · (cost_t − ρ_t) / ρ̄,    ρ̄ = B / n,   η = step / √n.

Why in log space: λ's scale is arbitrary (clicks per euro, per cent, per
thousand impressions) and spans orders of magnitude across campaigns, so an
additive step would need tuning per campaign; dividing the slack by ρ̄ and
stepping on log λ makes the update unit-free and keeps λ > 0 without a
projection. Why 1/√n: online dual descent's regret is O(√n) with steps ∝ 1/√n
(Balseiro et al. 2023), and the step then means the same at any size of day:
a stretch of m auctions spent at (1 + ε) times the plan moves log λ by
step · ε · m / √n, so at n = 100,000 and the default ``step=0.25`` an hour
(about 4,000 auctions) spent 10 % too fast raises λ by about 37 %, and a day's
worth of spend off by 1 % of the budget moves it by a factor e^0.8. While
nothing is won, λ falls by a factor e every √n / step auctions (1,265 at
n = 100,000). The default was chosen on chapter 10's days
(``benchmarks/bidding.py``): larger steps track the plan more tightly but
chase every expensive win (at 2 % of the cost of winning everything, a step of
2 loses 10 % of the optimum to that noise), smaller ones start slowly from a
cold start.

**The spend plan** (budget smoothing: Lee, Jalali & Dasdan 2013; Agarwal et al.
2014) is a shape over the day's auctions: ``"uniform"`` (the default) spends
the same per auction, that is, in proportion to traffic; ``"history"``
follows the hindsight optimum's spend on yesterday's log (``history``), which
spends more in the hours when value per cost is good (:func:`history_plan`);
an array gives any shape, read as a curve over the day's share of auctions
(its length need not be n). With ``replan=True`` (the default) the target
ρ_t is the remaining budget spread over the rest of the plan, (B − spent) ·
w_t / Σ_{s≥t} w_s, so a past lag is spread over the rest of the day instead
of being paid back: after a cold start the pacer does not have to over-bid to
catch up. With ``replan=False`` the plan is a fixed schedule and log λ is an
integral controller on the lag behind it, log λ_t = log λ_0 + η (spent_t −
plan_t) / ρ̄.

**The starting λ.** Real pacers start from yesterday's multiplier: with
``history=(values, prices)`` (yesterday's log), λ₀ is the hindsight optimum's
threshold on it at the same budget per auction (:func:`history_multiplier`).
Without history (a cold start) λ₀ makes the bid on an average value equal to
ρ̄ (the average over the first ``warmup`` values), a bid that wins little, and
the step lowers λ until the spend follows the plan. ``lam0`` sets λ₀ directly.

**The profit (quasi-linear) variant.** When the value is money
(``value_per_unit`` V, e.g. the advertiser's worth of a click) and the goal is
profit Σ (V v_i − p_i) x_i rather than as much value as the budget buys, the
Lagrangian gives the bid V v / (1 + μ) with μ ≥ 0 (Balseiro & Gur 2019): never
more than the value, and exactly the value when the budget does not bind. It
is the same pacer with λ = (1 + μ)/V held at λ ≥ 1/V (log λ projected onto
it); when the budget binds (λ* > 1/V) both objectives bid alike.
"""

from __future__ import annotations

import math

import numpy as np

from ctrkit.bidding.auctions import check_day, hindsight_optimum
from ctrkit.errors import DataError

PLANS = ("uniform", "history")


def history_multiplier(values, prices, budget_per_auction: float) -> float:
    """λ* of a past day's log at the same budget per auction: the hindsight optimum's threshold.

    When that budget buys everything worth anything, the lowest value per
    cost worth buying (so every such impression is bid on).
    """
    v, p = check_day(values, prices)
    best = hindsight_optimum(v, p, budget_per_auction * len(v))
    if best.threshold > 0:
        return best.threshold
    ratio = v[(v > 0) & (p > 0)] / p[(v > 0) & (p > 0)]
    return float(ratio.min()) if len(ratio) else 1.0


def history_plan(values, prices, budget_per_auction: float, bins: int = 96) -> np.ndarray:
    """The hindsight optimum's spend on a past day, as a plan: mean spend per auction in ``bins`` stretches of traffic.

    Returns (bins,) weights over equal shares of the day's auctions (96 bins:
    a quarter hour's worth each, on average), for ``DualPacingBidder(plan=...)``.
    Binning smooths the single-auction noise away and keeps the day's shape.
    """
    v, p = check_day(values, prices)
    if bins < 1 or bins > len(v):
        raise DataError(f"bins must lie in 1..{len(v)} (the history's auctions), got {bins}")
    spend = p * hindsight_optimum(v, p, budget_per_auction * len(v)).x
    return np.array([chunk.mean() for chunk in np.array_split(spend, bins)])


class DualPacingBidder:
    """Bid ``value / λ``; after each auction move log λ by ``step/√n · (cost − ρ_t) / ρ̄`` (module docstring).

    ``budget`` and ``n_auctions`` (the expected number of auctions in the
    day) set the average spend per auction ρ̄ = budget / n_auctions. Defaults
    are chapter 10's: ``step=0.25``, the uniform plan, replanned every
    auction, λ₀ from ``history`` when given. The bid is capped at the remaining
    budget, and the bidder bids 0 once the budget is spent. ``lam`` is the
    current multiplier, ``spent`` the spend so far.

    ``step``: η = step / √n_auctions; ``plan``: ``"uniform"``, ``"history"``
    or an array of weights over the day; ``replan``: spread the remaining
    budget over the rest of the plan at every auction; ``history``: yesterday's
    ``(values, prices)``, for λ₀ and ``plan="history"`` (``plan_bins`` stretches
    of traffic); ``lam0``: λ₀ itself; ``warmup``: the auctions whose mean value
    sets a cold start's λ₀; ``value_per_unit``: V, for the profit variant.
    """

    def __init__(self, budget: float, n_auctions: int, *, step: float = 0.25, plan="uniform", replan: bool = True,
                 history: tuple | None = None, lam0: float | None = None, warmup: int = 100,
                 value_per_unit: float | None = None, plan_bins: int = 96):
        if not (np.isfinite(budget) and budget > 0):
            raise DataError(f"budget must be a positive number, got {budget}")
        if n_auctions < 1 or warmup < 1:
            raise DataError(f"n_auctions and warmup must be at least 1, got {n_auctions} and {warmup}")
        if not step >= 0:
            raise DataError(f"step must be >= 0, got {step}")
        if lam0 is not None and not lam0 > 0:
            raise DataError(f"lam0 must be positive, got {lam0}")
        if value_per_unit is not None and not value_per_unit > 0:
            raise DataError(f"value_per_unit must be positive, got {value_per_unit}")
        self.budget, self.n_auctions = float(budget), int(n_auctions)
        self.rho = self.budget / self.n_auctions
        self.eta = step / np.sqrt(self.n_auctions)
        self.value_per_unit = value_per_unit
        self.warmup = warmup
        self.spent, self.t, self._value_sum = 0.0, 0, 0.0
        self._per_auction = self._plan(plan, history, plan_bins)
        self.replan = replan
        self._plan_left = np.concatenate([np.cumsum(self._per_auction[::-1])[::-1], [0.0]])  # plan from t to the end
        if lam0 is None and history is not None:
            lam0 = history_multiplier(*history, self.rho)
        self._scale = lam0  # λ = scale · exp(log_mult); a cold start fixes the scale over the warm-up
        self._cold = lam0 is None
        self._log_mult = 0.0

    def _plan(self, plan, history, bins: int) -> np.ndarray:
        """The plan's spend per auction, (n_auctions,), from a spend curve over the day's share of auctions."""
        if isinstance(plan, str):
            if plan not in PLANS:
                raise DataError(f"plan must be one of {PLANS} or an array of weights, got {plan!r}")
            if plan == "uniform":
                return np.full(self.n_auctions, self.rho)
            if history is None:
                raise DataError('plan="history" needs history=(values, prices), yesterday\'s log')
            plan = history_plan(*history, self.rho, bins)
        weights = np.asarray(plan, dtype=np.float64)
        if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or not weights.sum() > 0:
            raise DataError("a plan array must hold non-negative weights, not all 0")
        cum = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        at = np.interp(np.arange(self.n_auctions + 1) / self.n_auctions, np.linspace(0.0, 1.0, len(cum)), cum)
        return self.budget * np.diff(at)

    @property
    def lam(self) -> float:
        """The current multiplier λ (value per unit of money); NaN before a cold start's first bid."""
        if self._scale is None:
            return float("nan")
        lam = self._scale * math.exp(self._log_mult)
        return lam if self.value_per_unit is None else max(lam, 1.0 / self.value_per_unit)

    def target(self) -> float:
        """ρ_t: what the plan allows the current auction to spend."""
        t = self.t
        if t >= self.n_auctions:  # a longer day than expected: keep the average pace
            return self.rho
        planned = float(self._per_auction[t])
        if not self.replan:
            return planned
        left = self._plan_left[t]
        return planned * (self.budget - self.spent) / left if left > 0 else 0.0

    def bid(self, value: float) -> float:
        """value / λ, at most the remaining budget (0 once it is spent)."""
        remaining = self.budget - self.spent
        if self.t < self.warmup and self._cold:
            self._value_sum += value
            self._scale = max(self._value_sum / (self.t + 1), 1e-12) / self.rho
        if remaining <= 0:
            return 0.0
        return min(value / self.lam, remaining)

    def observe(self, won: bool, cost: float) -> None:
        """The outcome of the auction just bid on: move log λ by η (cost − ρ_t) / ρ̄ while budget is left."""
        rho_t = self.target()
        self.spent += cost
        self.t += 1
        if self.budget - self.spent > 0:
            self._log_mult += self.eta * (cost - rho_t) / self.rho
            if self.value_per_unit is not None and self._scale is not None:  # profit variant: log λ projected onto λ ≥ 1/V
                self._log_mult = max(self._log_mult, -math.log(self.value_per_unit * self._scale))


class ConstantBidder:
    """No pacing: bid ``value / lam`` with a fixed λ, until the budget is spent.

    ``lam = 1/V`` bids the value in money (truthful bidding, V the worth of a
    click); ``lam`` = Σ v / Σ p of yesterday bids what the market charges an
    average impression per unit of value; ``lam`` = yesterday's λ* is the
    hindsight optimum's bid if today were yesterday. None of them looks at
    today's spend: that is what pacing adds.
    """

    def __init__(self, lam: float, budget: float | None = None):
        if not lam > 0:
            raise DataError(f"lam must be positive, got {lam}")
        self.lam, self.budget, self.spent = float(lam), budget, 0.0

    def bid(self, value: float) -> float:
        if self.budget is not None and self.spent >= self.budget:
            return 0.0
        return value / self.lam

    def observe(self, won: bool, cost: float) -> None:
        self.spent += cost
