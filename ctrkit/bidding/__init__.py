"""Bidding under a budget (chapter 10): from a predicted CTR to a bid, and pacing the spend over a day.

- :mod:`~ctrkit.bidding.days`: days of auctions with a known truth, values from the synthetic twin and
  market prices (stationary, or with a daily cycle) (:func:`auction_days`);
- :mod:`~ctrkit.bidding.auctions`: the repeated second- and first-price auction simulator
  (:func:`run_auctions`) and the hindsight optimum every bidder is scored against (:func:`hindsight_optimum`);
- :mod:`~ctrkit.bidding.pacing`: the dual-pacing bidder (bid value / λ, λ learned from the spend) and a
  bidder without pacing.
"""

from ctrkit.bidding.auctions import RULES, AuctionResult, Bidder, Hindsight, hindsight_optimum, run_auctions
from ctrkit.bidding.days import GOALS, AuctionDay, auction_day, auction_days, cost_of_everything, market_price
from ctrkit.bidding.pacing import PLANS, ConstantBidder, DualPacingBidder, history_multiplier, history_plan

__all__ = ["GOALS", "PLANS", "RULES", "AuctionDay", "AuctionResult", "Bidder", "ConstantBidder", "DualPacingBidder",
           "Hindsight", "auction_day", "auction_days", "cost_of_everything", "hindsight_optimum", "history_multiplier",
           "history_plan", "market_price", "run_auctions"]
