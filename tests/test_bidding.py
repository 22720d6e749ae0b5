"""ctrkit.bidding: the hindsight optimum against an LP solver, payment rules by hand, the pacer's direction and its
stationary-day target, determinism and input checks."""

import numpy as np
import pytest
from scipy.optimize import linprog

from ctrkit import bidding
from ctrkit.errors import DataError


class Scripted:
    """A bidder that bids a fixed list and records what it is told."""

    def __init__(self, bids, budget=None):
        self.bids, self.seen, self.budget = list(bids), [], budget

    def bid(self, value):
        return self.bids[len(self.seen)]

    def observe(self, won, cost):
        self.seen.append((won, cost))


@pytest.mark.parametrize("seed", range(6))
def test_hindsight_optimum_matches_linprog(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    values = rng.lognormal(-3, 1, n) * (rng.random(n) > 0.1)  # some impressions worth nothing
    prices = rng.lognormal(-3, 0.7, n) * (rng.random(n) > 0.1)  # some free
    budget = float(rng.uniform(0.05, 0.8) * prices.sum())
    lp = linprog(-values, A_ub=prices[None, :], b_ub=[budget], bounds=(0, 1), method="highs")
    best = bidding.hindsight_optimum(values, prices, budget)
    assert best.value == pytest.approx(-lp.fun, rel=1e-9)
    assert best.spend <= budget * (1 + 1e-12) and ((best.x >= 0) & (best.x <= 1)).all()
    assert best.value == pytest.approx(values @ best.x) and best.greedy_value <= best.value
    assert best.greedy_spend <= budget and best.value - best.greedy_value <= values.max()
    ratio = np.divide(values, prices, out=np.full(n, np.inf), where=prices > 0)
    assert (ratio[best.x == 1] >= best.threshold).all()  # everything taken is at least as good as λ*
    assert (ratio[(best.x == 0) & (values > 0)] <= best.threshold).all()


def test_hindsight_optimum_edges():
    values, prices = np.array([0.1, 0.2, 0.0, 0.3]), np.array([1.0, 1.0, 1.0, 0.0])
    everything = bidding.hindsight_optimum(values, prices, 10.0)  # the budget does not bind
    assert everything.value == pytest.approx(0.6) and everything.spend == pytest.approx(2.0)
    assert everything.threshold == 0.0 and everything.x[2] == 0  # a worthless impression is never bought
    nothing = bidding.hindsight_optimum(values, prices, 0.0)  # only the free impression
    assert nothing.value == pytest.approx(0.3) and nothing.spend == 0.0 and nothing.threshold == pytest.approx(0.2)
    half = bidding.hindsight_optimum(values, prices, 1.5)  # the free one, the 0.2 one, half of the 0.1 one
    assert half.value == pytest.approx(0.55) and half.x == pytest.approx([0.5, 1, 0, 1]) and half.greedy_value == 0.5


# Budget 10. Auction 1 is a tie (bid = price), 2 is outbid, 4's price (4) exceeds what is left of the budget (3).
VALUES = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
PRICES = np.array([3.0, 5.0, 4.0, 4.0, 2.0])
BIDS = [3.0, 4.0, 6.0, 9.0, 5.0]


def test_second_price_pays_the_price_and_keeps_the_budget():
    bidder = Scripted(BIDS)
    result = bidding.run_auctions(VALUES, PRICES, bidder, budget=10.0)
    assert result.won.tolist() == [True, False, True, False, True]
    assert result.costs.tolist() == [3.0, 0.0, 4.0, 0.0, 2.0]
    assert result.spent.tolist() == [3.0, 3.0, 7.0, 7.0, 9.0]
    assert (result.spend, result.wins, result.value) == (9.0, 3, pytest.approx(0.9))
    assert bidder.seen == [(True, 3.0), (False, 0.0), (True, 4.0), (False, 0.0), (True, 2.0)]
    assert result.bids.tolist() == BIDS and np.isnan(result.lambdas).all()  # a bidder without λ
    truth = np.array([1.0, 1.0, 1.0, 1.0, 1.0])  # scored on the true values, not the bid-on ones
    assert bidding.run_auctions(VALUES, PRICES, Scripted(BIDS), budget=10.0, true_values=truth).value == 3.0


def test_first_price_pays_the_bid():
    result = bidding.run_auctions(VALUES, PRICES, Scripted(BIDS), budget=10.0, rule="first")
    # 1: tie, pays 3 (7 left); 2: outbid; 3: pays 6 (1 left); 4 and 5: bids of 9 and 5 exceed the 1 left
    assert result.won.tolist() == [True, False, True, False, False]
    assert result.costs.tolist() == [3.0, 0.0, 6.0, 0.0, 0.0] and result.spend == 9.0
    budget_of_bidder = Scripted(BIDS, budget=3.0)  # the budget defaults to the bidder's
    assert bidding.run_auctions(VALUES, PRICES, budget_of_bidder).spend == 3.0


def test_spend_never_exceeds_the_budget_and_no_pacing_runs_dry():
    day = bidding.auction_day(5_000, seed=3)
    budget = 0.1 * day.cost_of_everything
    average = day.values.sum() / day.prices.sum()  # bid what the market charges an average impression
    result = bidding.run_auctions(day.values, day.prices, bidding.ConstantBidder(average), budget=budget)
    assert result.spend <= budget and np.all(np.diff(result.spent) >= 0)
    dry = result.exhausted_at()  # the auction after which 99.9 % of the budget is gone
    assert dry is not None and dry < len(day) / 2  # out of budget before noon
    assert result.spend - result.spent[dry] <= 1e-3 * budget  # afterwards only crumbs: the cheapest auctions
    assert (result.costs[dry + 1:][result.won[dry + 1:]] <= 1e-3 * budget).all()


def test_pacer_moves_lambda_the_right_way():
    def pacer(**kwargs):
        bidder = bidding.DualPacingBidder(100.0, 1_000, lam0=2.0, **kwargs)
        bidder.bid(0.05)
        return bidder

    rho = 100.0 / 1_000
    over, under, on_plan = pacer(), pacer(), pacer(replan=False)
    over.observe(True, 5 * rho)  # spending faster than the plan: λ up, bids down
    under.observe(False, 0.0)  # slower: λ down, bids up
    on_plan.observe(True, rho)
    assert over.lam > 2.0 > under.lam and on_plan.lam == pytest.approx(2.0)
    assert over.bid(0.05) < 0.05 / 2.0 < under.bid(0.05)
    step = 0.25 / np.sqrt(1_000)  # log λ moves by η (cost − ρ) / ρ̄
    assert np.log(over.lam / 2.0) == pytest.approx(4 * step) and np.log(under.lam / 2.0) == pytest.approx(-step)
    frozen = pacer(step=0.0)
    frozen.observe(True, 50.0)
    assert frozen.lam == 2.0
    # the profit variant never bids more than the value in money, V · v
    profit = bidding.DualPacingBidder(100.0, 1_000, lam0=0.1, value_per_unit=4.0)
    assert profit.bid(0.05) == pytest.approx(4.0 * 0.05)
    for _ in range(50):
        profit.observe(False, 0.0)
    assert profit.bid(0.05) == pytest.approx(4.0 * 0.05) and profit.lam == pytest.approx(0.25)


def test_plans_spend_the_budget():
    bidder = bidding.DualPacingBidder(50.0, 200, lam0=1.0, plan=np.array([1.0, 3.0]), replan=False)
    targets = [bidder.target() for bidder.t in range(200)]
    assert sum(targets) == pytest.approx(50.0) and targets[150] == pytest.approx(3 * targets[50])
    day = bidding.auction_day(2_000, cycle=True, seed=1)
    weights = bidding.history_plan(day.values, day.prices, 0.1 * day.cost_of_everything / len(day), bins=24)
    sizes = [len(chunk) for chunk in np.array_split(day.values, 24)]
    assert weights.shape == (24,) and weights @ sizes == pytest.approx(0.1 * day.cost_of_everything)


def test_days_and_runs_are_deterministic():
    a, b, c = (bidding.auction_days(3_000, 2, cycle=True, seed=seed) for seed in (0, 0, 1))
    assert all(np.array_equal(x.values, y.values) and np.array_equal(x.prices, y.prices) for x, y in zip(a, b))
    assert not np.array_equal(a[0].prices[:100], c[0].prices[:100])
    assert not np.array_equal(a[0].values[:100], a[1].values[:100])  # two different days of one world
    day = bidding.auction_day(3_000, seed=0)
    conversions = bidding.auction_day(3_000, seed=0, goal="conversion", value_per_conversion=50.0)
    assert (conversions.values <= 50.0 * day.values + 1e-12).all() and (conversions.values < 50.0 * day.values).any()
    assert len(day) == 3_000 and (day.hours >= 0).all() and (day.hours < 24).all() and np.all(np.diff(day.seconds) >= 0)
    runs = [bidding.run_auctions(day.values, day.prices, bidding.DualPacingBidder(0.1 * day.cost_of_everything,
                                                                                  len(day))) for _ in range(2)]
    assert np.array_equal(runs[0].bids, runs[1].bids) and np.array_equal(runs[0].lambdas, runs[1].lambdas)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_pacer_reaches_95_percent_of_the_optimum_on_the_stationary_day(seed):
    yesterday, today = bidding.auction_days(20_000, 2, seed=seed)
    budget = 0.1 * today.cost_of_everything
    best = bidding.hindsight_optimum(today.values, today.prices, budget)
    for history in (None, (yesterday.values, yesterday.prices)):  # a cold start, and yesterday's λ
        result = bidding.run_auctions(today.values, today.prices,
                                      bidding.DualPacingBidder(budget, len(today), history=history))
        assert result.share_of(best) >= 0.95 and 0.98 <= result.spend_share <= 1.0
        bids = np.minimum(today.values / result.lambdas, budget - np.concatenate([[0], result.spent[:-1]]))
        assert np.allclose(result.bids, bids)  # the pacer bids value / λ


def test_history_plan_beats_the_uniform_plan_on_the_cycle_day():
    yesterday, today = bidding.auction_days(20_000, 2, cycle=True, seed=0)
    budget = 0.1 * today.cost_of_everything
    best = bidding.hindsight_optimum(today.values, today.prices, budget)
    share = {plan: bidding.run_auctions(today.values, today.prices, bidding.DualPacingBidder(
        budget, len(today), history=(yesterday.values, yesterday.prices), plan=plan)).share_of(best)
        for plan in ("uniform", "history")}
    assert share["history"] > share["uniform"] + 0.02 and share["uniform"] >= 0.9


def test_bad_input_is_a_data_error():
    pacer = bidding.DualPacingBidder(1.0, 10, lam0=1.0)
    with pytest.raises(DataError, match="budget"):
        bidding.run_auctions(VALUES, PRICES, pacer, budget=-1.0)
    with pytest.raises(DataError, match="budget"):
        bidding.DualPacingBidder(-1.0, 10)
    with pytest.raises(DataError, match="budget"):
        bidding.hindsight_optimum(VALUES, PRICES, -1.0)
    with pytest.raises(DataError, match="budget"):
        bidding.run_auctions(VALUES, PRICES, Scripted(BIDS))  # no budget anywhere
    with pytest.raises(DataError, match="equal length"):
        bidding.run_auctions(VALUES, PRICES[:4], pacer, budget=1.0)
    with pytest.raises(DataError, match="equal length"):
        bidding.hindsight_optimum(VALUES[:3], PRICES, 1.0)
    with pytest.raises(DataError, match="rule"):
        bidding.run_auctions(VALUES, PRICES, pacer, budget=1.0, rule="third")
    with pytest.raises(DataError, match="prices"):
        bidding.run_auctions(VALUES, -PRICES, pacer, budget=1.0)
    with pytest.raises(DataError, match="bid"):
        bidding.run_auctions(VALUES, PRICES, Scripted([-1.0] * 5), budget=1.0)
    with pytest.raises(DataError, match="plan"):
        bidding.DualPacingBidder(1.0, 10, plan="hourly")
    with pytest.raises(DataError, match="history"):
        bidding.DualPacingBidder(1.0, 10, plan="history")
    with pytest.raises(DataError, match="goal"):
        bidding.auction_day(10, goal="revenue")
