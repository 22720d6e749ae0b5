"""The Open Bandit Dataset (chapter 09): real ad-like logs with logged propensities, and the policy to evaluate.

ZOZOTOWN showed fashion items in three slots with two policies, a uniform
random one and Bernoulli Thompson sampling (BTS), and logged both with the
propensity of every choice. Estimating BTS's click rate from the random logs,
and comparing it with the click rate BTS earned on its own logs, is the
dataset's real-world OPE check. A 10,000-round sample of each log ships with
ctrkit (``ctrkit/ope/data/README.md``: source and CC BY 4.0 licence); the full
dataset is read from a path.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from ctrkit.errors import DataError
from ctrkit.ope.feedback import LoggedFeedback

POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
N_POSITIONS = 3
REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")


def _data() -> Path:
    return Path(str(files("ctrkit.ope").joinpath("data")))


def obd_path(behavior_policy: str = "random", campaign: str = "all", data_path: str | Path | None = None) -> Path:
    """The CSV of one log: ``<data_path>/<policy>/<campaign>/<campaign>.csv`` (OBD's layout), or the shipped sample."""
    if behavior_policy not in POLICIES or campaign not in CAMPAIGNS:
        raise DataError(f"behavior_policy must be one of {POLICIES} and campaign one of {CAMPAIGNS}, "
                        f"got {behavior_policy!r}, {campaign!r}")
    if data_path is None:
        if campaign != "all":
            raise DataError("the shipped sample has the 'all' campaign only; pass data_path for the full dataset")
        return _data() / "obd" / behavior_policy / campaign / f"{campaign}.csv.gz"
    return Path(data_path) / behavior_policy / campaign / f"{campaign}.csv"


def read_obd(behavior_policy: str = "random", campaign: str = "all", data_path: str | Path | None = None,
             path: str | Path | None = None) -> LoggedFeedback:
    """One OBD log as :class:`LoggedFeedback`, validated: ``action`` the item id, ``position`` 0-2, ``reward`` the
    click, ``pscore`` the logging policy's propensity; ``context`` the timestamp and the user features
    (``user_feature_*``, categorical) and user-item affinities.

    ``data_path`` is the root of the full dataset (OBD's folder layout);
    ``path`` reads one CSV directly (plain or .gz). Neither: the shipped sample.
    """
    path = Path(path) if path is not None else obd_path(behavior_policy, campaign, data_path)
    if not path.exists():
        raise DataError(f"{path}: no such file (the Open Bandit Dataset: https://research.zozo.com/data.html)")
    frame = pd.read_csv(path, index_col=0)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: not an Open Bandit Dataset log, missing columns {missing}")
    items = path.parent / ("item_context.csv" + (".gz" if path.suffix == ".gz" else ""))
    n_actions = len(pd.read_csv(items, index_col=0)) if items.exists() else int(frame["item_id"].max()) + 1
    # positions are 1-3 in the file (obp ranks them densely from 0)
    position = pd.Series(frame["position"]).rank(method="dense").to_numpy(dtype=np.int64) - 1
    context = frame.drop(columns=["item_id", "position", "click", "propensity_score"]).reset_index(drop=True)
    context["timestamp"] = pd.to_datetime(context["timestamp"])
    return LoggedFeedback(frame["item_id"].to_numpy(np.int64), frame["click"].to_numpy(np.float64),
                          frame["propensity_score"].to_numpy(np.float64), n_actions, position, N_POSITIONS,
                          context).validate()


def bts_action_dist(campaign: str = "all", n_rounds: int = 1, n_sim: int = 100_000, random_state: int | None = 0,
                    len_list: int = N_POSITIONS) -> np.ndarray:
    """ZOZOTOWN's BTS policy as an action_dist (n_rounds, n_actions, len_list), by Monte Carlo over its Beta prior.

    Each simulation draws every item's click rate from Beta(alpha, beta) and
    shows the ``len_list`` highest in order; the share of simulations that put
    item a in slot k is π(a | k). The policy does not look at the user, so
    every round gets the same distribution (obp's
    ``BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist``).
    """
    prior = json.loads((_data() / "bts_prior.json").read_text())
    if campaign not in prior:
        raise DataError(f"no BTS prior for campaign {campaign!r}; choose one of {sorted(prior)}")
    alpha, beta = (np.asarray(prior[campaign][k]) for k in ("alpha", "beta"))
    rng = np.random.default_rng(random_state)
    counts = np.zeros((alpha.size, len_list))
    for start in range(0, n_sim, 10_000):
        draws = rng.beta(alpha, beta, size=(min(10_000, n_sim - start), alpha.size))
        top = np.argsort(-draws, axis=1)[:, :len_list]  # (sims, len_list): the items shown, best first
        for k in range(len_list):
            counts[:, k] += np.bincount(top[:, k], minlength=alpha.size)
    return np.broadcast_to(counts / n_sim, (n_rounds, *counts.shape)).copy()
