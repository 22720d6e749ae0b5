"""A bandit simulation with a known truth (chapter 09): requests, candidate ads, a logging policy and its log.

Each round is a request with ``n_actions`` candidate ads whose true click
probabilities (``expected_reward``, from the synthetic twin's ``p_click``)
are known. A policy is an ``action_dist`` (n_rounds, n_actions, 1): for
example a softmax over a model's scores. :func:`simulate_log` lets the logging
policy choose and draws the clicks; :func:`policy_value` is the exact value of
any policy on those rounds, the number every estimator tries to recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ctrkit.errors import DataError
from ctrkit.ope.estimators import dm
from ctrkit.ope.feedback import LoggedFeedback, check_action_dist


def softmax_policy(scores, temperature: float = 1.0) -> np.ndarray:
    """(n_rounds, n_actions) scores → action_dist (n_rounds, n_actions, 1) ∝ exp(score / temperature).

    A high temperature explores (near uniform); towards 0 it becomes greedy. Scores are best given as logits.
    """
    if not temperature > 0:
        raise DataError(f"temperature must be positive, got {temperature}")
    z = np.asarray(scores, dtype=np.float64) / temperature
    if z.ndim != 2:
        raise DataError(f"scores must have shape (n_rounds, n_actions), got {z.shape}")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True))[:, :, None]


def _per_slot(expected_reward) -> np.ndarray:
    """(n_rounds, n_actions) for one slot, or already (n_rounds, n_actions, n_positions): the 3-d form, as floats."""
    q = np.asarray(expected_reward, dtype=np.float64)
    return q[:, :, None] if q.ndim == 2 else q


def policy_value(action_dist, expected_reward, position=None) -> float:
    """The exact value of a policy on these rounds: mean over rounds of Σ_a π(a|x) q(x, a) (the DM formula, true q).

    ``expected_reward`` is (n_rounds, n_actions, n_positions), or (n_rounds, n_actions) for one slot.
    """
    return dm(action_dist, _per_slot(expected_reward), position)


def simulate_log(expected_reward, logging_dist, random_state: int | None = None) -> LoggedFeedback:
    """The log of the logging policy: an action per round drawn from ``logging_dist``, a click drawn from its truth.

    ``expected_reward`` is (n_rounds, n_actions) or (n_rounds, n_actions, 1); score estimators against
    :func:`policy_value` on it.
    """
    q = _per_slot(expected_reward)
    logging_dist = np.asarray(logging_dist, dtype=np.float64)
    check_action_dist(logging_dist, len(q))
    if logging_dist.shape != q.shape or q.shape[2] != 1:
        raise DataError(f"logging_dist {logging_dist.shape} and expected_reward {q.shape} must both be (n, n_actions, 1)")
    if q.min() < 0 or q.max() > 1:
        raise DataError("expected_reward must hold click probabilities in [0, 1]")
    rng = np.random.default_rng(random_state)
    rows = np.arange(len(q))
    cdf = np.cumsum(logging_dist[:, :, 0], axis=1)
    action = np.minimum((rng.random((len(q), 1)) > cdf).sum(axis=1), q.shape[1] - 1)  # inverse-CDF draw per round
    reward = (rng.random(len(q)) < q[rows, action, 0]).astype(np.float64)
    return LoggedFeedback(action, reward, logging_dist[rows, action, 0], q.shape[1]).validate()


def repeat_estimates(expected_reward, logging_dist, action_dist, estimators: dict, n_rounds=(None,),
                     n_repetitions: int = 100, estimated_rewards_by_reg_model=None, logged_pscore_dist=None,
                     random_state: int = 0, progress: bool = False) -> pd.DataFrame:
    """Every estimator on ``n_repetitions`` fresh logs per size, against the exact value: one row per estimate.

    For each size in ``n_rounds`` (None: every round), each repetition draws
    that many rounds without replacement, lets the logging policy act on them
    (:func:`simulate_log`, seeded per repetition) and runs every estimator
    (``{"label": function}``; bind hyperparameters with ``functools.partial``).
    The truth is the evaluated policy's exact value over all rounds, so the
    error includes the sampling of requests as well as of actions and clicks.
    ``logged_pscore_dist`` is the policy whose propensities the logger
    *recorded*, when they are wrong (the actions still follow ``logging_dist``).
    Columns: n_rounds, repetition, estimator, estimate, truth, error.
    """
    q = _per_slot(expected_reward)
    truth = policy_value(action_dist, q)
    rng = np.random.default_rng(random_state)
    rows_out = []
    sizes = [len(q) if n is None else int(n) for n in n_rounds]
    if max(sizes) > len(q):
        raise DataError(f"n_rounds {max(sizes)} exceeds the {len(q)} rounds simulated")
    with tqdm(total=len(sizes) * n_repetitions, disable=not progress, desc="repetitions") as bar:
        for n in sizes:
            for rep in range(n_repetitions):
                rows = np.sort(rng.choice(len(q), n, replace=False)) if n < len(q) else np.arange(n)
                log = simulate_log(q[rows], logging_dist[rows], random_state=[random_state, n, rep])
                if logged_pscore_dist is not None:
                    log.pscore = logged_pscore_dist[rows][np.arange(n), log.action, 0]
                arrays = dict(log.kwargs, action_dist=action_dist[rows])
                if estimated_rewards_by_reg_model is not None:
                    arrays["estimated_rewards_by_reg_model"] = estimated_rewards_by_reg_model[rows]
                for label, estimator in estimators.items():
                    estimate = estimator(**arrays)
                    rows_out.append((n, rep, label, estimate, truth, estimate - truth))
                bar.update()
    return pd.DataFrame(rows_out, columns=["n_rounds", "repetition", "estimator", "estimate", "truth", "error"])


def error_table(estimates: pd.DataFrame, by=("n_rounds", "estimator")) -> pd.DataFrame:
    """Bias, standard deviation and RMSE of each estimator (and size) from :func:`repeat_estimates`' rows."""
    grouped = estimates.groupby(list(by), sort=False)["error"]
    return pd.DataFrame({"bias": grouped.mean(), "std": grouped.std(ddof=0),
                         "rmse": grouped.apply(lambda e: float(np.sqrt(np.mean(np.square(e)))))})


@dataclass
class TwinBandit:
    """Requests of the synthetic twin, each with ``n_candidates`` candidate ads whose true click probability is known,
    and the scores of two CTR models for every candidate (see :func:`twin_bandit`).

    ``traffic`` holds the candidates in request order (request r's are rows
    r·n_candidates … r·n_candidates + n_candidates − 1); ``expected_reward``
    and ``logits[name]`` are (n_requests, n_candidates).
    """

    history: pd.DataFrame
    traffic: pd.DataFrame
    preprocessor: Any
    models: dict
    logits: dict
    expected_reward: np.ndarray
    n_candidates: int
    seed: int = 0

    def candidates(self, requests, actions=None) -> pd.DataFrame:
        """The traffic rows of these requests' candidates (all of them), or of the chosen ``actions`` (one each)."""
        requests = np.asarray(requests)
        if actions is None:
            rows = (requests[:, None] * self.n_candidates + np.arange(self.n_candidates)).ravel()
        else:
            rows = requests * self.n_candidates + np.asarray(actions)
        return self.traffic.iloc[rows].reset_index(drop=True)

    def logged(self, requests, log: LoggedFeedback) -> pd.DataFrame:
        """The candidates ``log`` showed on these requests (one per round), each with the click it got: the rows a
        reward model learns from."""
        return self.candidates(requests, log.action).assign(click=np.asarray(log.reward).astype(int))

    def tensors(self, frame: pd.DataFrame):
        from ctrkit.preprocessing import CTRTensors

        return CTRTensors.from_frame(self.preprocessor.transform(frame), self.preprocessor.spec)

    def train(self, name: str, frame: pd.DataFrame, epochs: int = 2, **hparams):
        """``build(name)`` trained on ``frame``'s first 90% in time and validated on the rest (seeded by ``seed``)."""
        import torch

        from ctrkit.datasets import split
        from ctrkit.models import build
        from ctrkit.training import TrainConfig, fit

        torch.manual_seed(self.seed)  # models never seed themselves: the caller fixes their initial weights
        model = build(name, self.preprocessor.spec, **hparams)
        part_train, part_val, _ = split(frame, how="time", fractions=(0.9, 0.1, 0.0))
        fit(model, self.tensors(part_train), self.tensors(part_val), TrainConfig(epochs=epochs, progress=False))
        return model

    def predict(self, model, frame: pd.DataFrame) -> np.ndarray:
        """A model's click probabilities for these rows."""
        from ctrkit.training import predict_proba

        return predict_proba(model, self.tensors(frame))


def twin_bandit(n_requests: int, n_candidates: int = 4, history: int = 100_000, base_rate: float = 0.1,
                seed: int = 0, models: dict | None = None) -> TwinBandit:
    """A bandit with a known truth, built on the synthetic twin (chapter 09).

    The twin's rows in time order are ``history`` rows the models learn from,
    then ``n_requests × n_candidates`` rows of traffic grouped into requests.
    The twin spans about one day per ``history`` rows (seven days at least), so
    the history is a whole day with every hour in it, whatever the traffic's size.
    ``models`` maps a name to ``(ctrkit model name, hyperparameters)``; by
    default "old" is a logistic regression and "new" a DeepFM with the
    frequency-aware L2, both trained on the history. A policy is then, for
    example, ``softmax_policy(bandit.logits["old"], temperature)``.
    """
    from ctrkit.datasets import split, synthetic_criteo
    from ctrkit.preprocessing import CTRPreprocessor
    from ctrkit.training import predict_logits

    if n_requests < 1 or n_candidates < 2:
        raise DataError(f"need at least 1 request and 2 candidates, got {n_requests} and {n_candidates}")
    models = models or {"old": ("lr", {}), "new": ("deepfm", {"l2": 0.1})}
    total = history + n_requests * n_candidates
    df = synthetic_criteo(total, seed=seed, base_rate=base_rate, n_days=max(7, round(total / history)))  # time order
    past, traffic = df.iloc[:history], df.iloc[history:].reset_index(drop=True)
    pre = CTRPreprocessor().fit(split(past, how="time", fractions=(0.9, 0.1, 0.0))[0])
    bandit = TwinBandit(past, traffic, pre, {}, {}, traffic["p_click"].to_numpy().reshape(-1, n_candidates),
                        n_candidates, seed)
    traffic_t = bandit.tensors(traffic)
    for label, (name, hparams) in models.items():
        bandit.models[label] = bandit.train(name, past, **hparams)
        bandit.logits[label] = predict_logits(bandit.models[label], traffic_t).reshape(-1, n_candidates)
    return bandit
