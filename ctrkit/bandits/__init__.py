"""Bandits (chapter 10): policies that choose ads and learn from the clicks they get, scored by their regret.

Every policy is ``Cls(n_actions, dim, seed=…)`` with ``select(x) -> int`` and
``update(x, action, reward)``.

- :mod:`~ctrkit.bandits.policies`: the interface, :class:`UniformRandom`, :class:`EpsilonGreedy` and
  :class:`BetaBernoulliThompson` (Thompson 1933; Agrawal & Goyal 2012);
- :mod:`~ctrkit.bandits.linear`: :class:`LinUCB` (Li et al. 2010) and :class:`LogisticThompson`
  (Chapelle & Li 2011's Laplace-approximated logistic regression);
- :mod:`~ctrkit.bandits.neural`: :class:`NeuralLinearThompson` (Riquelme, Tucker & Snoek 2018) on the last hidden
  layer of a ctrkit CTR model (:func:`last_hidden`);
- :mod:`~ctrkit.bandits.simulation`: problems with a known truth, :func:`simulate` with common random numbers,
  and regret over policies × seeds (:func:`compare`, :func:`regret_table`).
"""

from ctrkit.bandits.linear import LinUCB, LogisticThompson, laplace_update, logistic_map
from ctrkit.bandits.neural import NeuralLinearThompson, last_hidden
from ctrkit.bandits.policies import (
    BetaBernoulliThompson, ContextualPolicy, EpsilonGreedy, Policy, UniformRandom, argmax_random_ties,
)
from ctrkit.bandits.simulation import (
    BanditProblem, BanditRun, bernoulli_problem, best_arm_regret, common_random_numbers, compare, logistic_problem,
    regret_table, simulate,
)

__all__ = ["BanditProblem", "BanditRun", "BetaBernoulliThompson", "ContextualPolicy", "EpsilonGreedy", "LinUCB",
           "LogisticThompson", "NeuralLinearThompson", "Policy", "UniformRandom", "argmax_random_ties",
           "bernoulli_problem", "best_arm_regret", "common_random_numbers", "compare", "laplace_update", "last_hidden",
           "logistic_map", "logistic_problem", "regret_table", "simulate"]
