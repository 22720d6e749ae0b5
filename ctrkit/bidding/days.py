"""Days of auctions with a known truth (chapter 10): what each impression is worth and what it costs to win it.

An auction day is a sequence of impressions in time order. Each has a
**value**, the expected number of clicks (or conversions) it brings: the true
``p_click`` of a row of the synthetic twin (:func:`ctrkit.datasets.synthetic_criteo`),
or ``p_click × p_conversion × value_per_conversion``; and a **market price**,
the highest competing bid, which a second-price auction charges the winner.
Competitors price an impression from their own, noisy estimate of its value, so
the price is positively correlated with the value but far from proportional:

    price_i = cpc · v̄ · (v_i / v̄)^β · m(hour_i) · exp(σ z_i − σ²/2),    z_i ~ N(0, 1)

with v̄ the day's mean value, ``cpc`` the market's cost of a unit of value at an
average impression, β < 1 (the market under-prices the best impressions
relative to their value, so value per cost varies and a bidder has something to
choose) and σ the noise. ``market_price`` draws these.

Two kinds of day (``cycle``):

- **stationary**: the twin's rows in random order at evenly spread times, so
  every stretch of the day looks like every other. A bidder that spends evenly
  (the uniform spend plan) can match the hindsight optimum;
- **daily cycle**: the twin's own time order. Traffic per hour varies about
  fourfold (busiest around 19:00–20:00) and the click probability peaks at 20:00
  (both from the twin), and competition adds its own hourly multiplier m(h) on
  the price, peaking at ``price_peak`` (14:00 by default) with log-amplitude
  ``price_amplitude``. Value per cost is then best in the small hours and worst
  around 13:00: spending evenly per auction is no longer optimal (chapter 10
  measures by how much, and what a spend plan from yesterday's log recovers).

``auction_days`` returns several consecutive days of the same world (the same
twin seed): yesterday's log to start from, today's to bid on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctrkit.errors import DataError

GOALS = ("click", "conversion")


@dataclass
class AuctionDay:
    """One day of auctions in time order (arrays of one entry per auction).

    ``values``: expected clicks (or conversions) of each impression, the truth;
    ``prices``: the market price, the highest competing bid; ``hours``: hour of
    day 0..23; ``seconds``: seconds since midnight.
    """

    values: np.ndarray
    prices: np.ndarray
    hours: np.ndarray
    seconds: np.ndarray
    cycle: bool = False

    def __len__(self) -> int:
        return len(self.values)

    @property
    def cost_of_everything(self) -> float:
        """Σ prices: what winning every auction would cost in a second-price auction. Budgets are fractions of it."""
        return cost_of_everything(self.prices)


def cost_of_everything(prices) -> float:
    """Σ prices: the spend that wins every auction of the day at second price (budgets are set as fractions of it)."""
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1 or (prices < 0).any() or not np.isfinite(prices).all():
        raise DataError("prices must be a 1-d array of finite, non-negative numbers")
    return float(prices.sum())


def market_price(values, hours=None, *, cpc: float = 1.0, beta: float = 0.7, sigma: float = 0.6,
                 price_amplitude: float = 0.0, price_peak: float = 14.0, seed: int | list[int] = 0) -> np.ndarray:
    """The highest competing bid for each impression: cpc · v̄ · (v/v̄)^β · m(hour) · lognormal noise of mean 1.

    ``m(h) = exp(price_amplitude · sin(2π (h − price_peak + 6) / 24))`` peaks at
    ``price_peak`` (1 when the amplitude is 0; ``hours``, fractional hours of
    day, may then be None). Deterministic for a given seed (an int or a list of ints).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0 or (v < 0).any() or not np.isfinite(v).all() or v.sum() == 0:
        raise DataError("values must be a non-empty 1-d array of finite, non-negative numbers, not all 0")
    if not cpc > 0 or not sigma >= 0 or not 0 <= beta <= 1:
        raise DataError(f"need cpc > 0, sigma >= 0 and 0 <= beta <= 1, got {cpc}, {sigma}, {beta}")
    mean = v.mean()
    log_m = 0.0
    if price_amplitude:
        if hours is None or len(hours) != len(v):
            raise DataError("a price cycle needs the hour of every auction")
        log_m = price_amplitude * np.sin(2 * np.pi * (np.asarray(hours, dtype=np.float64) - price_peak + 6) / 24)
    noise = np.random.default_rng([*np.atleast_1d(seed).tolist(), 7]).normal(0.0, 1.0, len(v))
    return cpc * mean * (v / mean) ** beta * np.exp(log_m + sigma * noise - sigma**2 / 2)


def auction_days(n_auctions: int, n_days: int = 2, *, cycle: bool = False, seed: int = 0, base_rate: float = 0.03,
                 goal: str = "click", value_per_conversion: float = 1.0, cpc: float = 1.0, beta: float = 0.7,
                 sigma: float = 0.6, price_amplitude: float = 0.5, price_peak: float = 14.0) -> list[AuctionDay]:
    """``n_days`` consecutive days of about ``n_auctions`` auctions each, from one world of the synthetic twin.

    Values are the twin's true ``p_click`` (mean ``base_rate``: display CTRs are
    a few percent, heavy-tailed) for ``goal="click"``, or ``p_click ×
    p_conversion × value_per_conversion`` for ``goal="conversion"``; prices
    come from :func:`market_price` (its arguments), with the hourly price cycle
    only when ``cycle``. The days share the twin's seed, so yesterday is a fair
    guide to today; the number of auctions varies from day to day around
    ``n_auctions`` on the cycle day (the twin assigns rows to days at random)
    and is exactly ``n_auctions`` on the stationary day. Deterministic for a given seed.
    """
    from ctrkit.datasets import synthetic_criteo

    if n_auctions < 1 or n_days < 1:
        raise DataError(f"need n_auctions >= 1 and n_days >= 1, got {n_auctions} and {n_days}")
    if goal not in GOALS:
        raise DataError(f"goal must be one of {GOALS}, got {goal!r}")
    twin = synthetic_criteo(n_auctions * n_days, seed=seed, base_rate=base_rate, n_days=n_days)
    value = twin["p_click"].to_numpy(dtype=np.float64)
    if goal == "conversion":
        value = value * twin["p_conversion"].to_numpy(dtype=np.float64) * value_per_conversion
    seconds = (twin["ts"] - twin["ts"].dt.normalize()).dt.total_seconds().to_numpy()
    day_of = (twin["ts"].dt.normalize() - twin["ts"].dt.normalize().iloc[0]).dt.days.to_numpy()
    rng = np.random.default_rng([seed, 8])
    shuffled = rng.permutation(len(value))
    days = []
    for d in range(n_days):
        if cycle:
            v, s = value[day_of == d], seconds[day_of == d]
        else:  # the same kind of rows, shuffled over evenly spread times: no hour differs from another
            v = value[shuffled[d * n_auctions:(d + 1) * n_auctions]]
            s = np.sort(rng.uniform(0, 86_400, n_auctions))
        prices = market_price(v, s / 3_600, cpc=cpc, beta=beta, sigma=sigma,
                              price_amplitude=price_amplitude if cycle else 0.0, price_peak=price_peak,
                              seed=[seed, d])
        days.append(AuctionDay(v, prices, (s // 3_600).astype(np.int64), s, cycle))
    return days


def auction_day(n_auctions: int, *, cycle: bool = False, seed: int = 0, **kwargs) -> AuctionDay:
    """One day of :func:`auction_days` (its first); keyword arguments are passed on."""
    return auction_days(n_auctions, 1, cycle=cycle, seed=seed, **kwargs)[0]
