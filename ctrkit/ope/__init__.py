"""Off-policy evaluation (chapter 09): the value of a new policy, estimated from the logs of the old one.

- :mod:`~ctrkit.ope.feedback`: :class:`LoggedFeedback` and the input checks;
- :mod:`~ctrkit.ope.estimators`: DM, IPS, SNIPS, DR, SNDR, Switch-DR, DR-OS
  (obp's names and definitions), bootstrap intervals and weight diagnostics;
- :mod:`~ctrkit.ope.reward`: cross-fitted reward models for DM and DR;
- :mod:`~ctrkit.ope.simulation`: a bandit on the synthetic twin with a known truth (:func:`twin_bandit`),
  logs drawn from a policy, and repeated simulations scored against the exact value;
- :mod:`~ctrkit.ope.obd`: the Open Bandit Dataset reader and ZOZOTOWN's BTS policy.
"""

from ctrkit.ope.estimators import (
    ESTIMATORS, bootstrap_ci, dm, dr, dr_os, effective_sample_size, importance_weights, ips, sndr, snips, switch_dr,
    weight_diagnostics,
)
from ctrkit.ope.feedback import LoggedFeedback
from ctrkit.ope.obd import bts_action_dist, obd_path, read_obd
from ctrkit.ope.reward import cross_fit
from ctrkit.ope.simulation import (
    TwinBandit, error_table, policy_value, repeat_estimates, simulate_log, softmax_policy, twin_bandit,
)

__all__ = ["ESTIMATORS", "LoggedFeedback", "TwinBandit", "bootstrap_ci", "bts_action_dist", "cross_fit", "dm", "dr", "dr_os",
           "effective_sample_size", "error_table", "importance_weights", "ips", "obd_path", "policy_value", "read_obd",
           "repeat_estimates", "simulate_log", "sndr", "snips", "softmax_policy", "switch_dr", "twin_bandit", "weight_diagnostics"]
