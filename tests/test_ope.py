"""ctrkit.ope: estimators on hand-computed inputs, their statistical properties, input checks, the OBD reader."""

import numpy as np
import pytest

from ctrkit import ope
from ctrkit.errors import DataError

# Four rounds, two actions, one slot. The logging policy's propensities differ per round; the evaluated policy takes
# action 0 with probability 0.8 everywhere; the reward model says 0.6 for action 0 and 0.4 for action 1.
ACTION = np.array([0, 1, 0, 1])
REWARD = np.array([1.0, 0.0, 0.0, 1.0])
PSCORE = np.array([0.5, 0.25, 0.5, 0.8])
PI = np.tile(np.array([0.8, 0.2])[None, :, None], (4, 1, 1))
QHAT = np.tile(np.array([0.6, 0.4])[None, :, None], (4, 1, 1))
TINY = dict(reward=REWARD, action=ACTION, pscore=PSCORE, action_dist=PI, estimated_rewards_by_reg_model=QHAT)


def test_estimators_on_hand_computed_inputs():
    # weights w = π_e/π_b = 1.6, 0.8, 1.6, 0.25; Σ w r = 1.6 + 0.25 = 1.85; Σ w = 4.25
    assert ope.importance_weights(ACTION, PSCORE, PI) == pytest.approx([1.6, 0.8, 1.6, 0.25])
    assert ope.ips(**TINY) == pytest.approx(1.85 / 4)
    assert ope.ips(**TINY, clip=1.0) == pytest.approx((1.0 + 0.25) / 4)  # weights capped at 1
    assert ope.snips(**TINY) == pytest.approx(1.85 / 4.25)
    assert ope.dm(**TINY) == pytest.approx(0.8 * 0.6 + 0.2 * 0.4)  # 0.56 in every round
    # DR per round: 0.56 + w (r - q̂(a)): 0.56 + 0.64, 0.56 - 0.32, 0.56 - 0.96, 0.56 + 0.15
    corrections = np.array([0.64, -0.32, -0.96, 0.15])
    assert ope.dr(**TINY) == pytest.approx(0.56 + corrections.mean())
    assert ope.sndr(**TINY) == pytest.approx(0.56 + corrections.mean() / (4.25 / 4))
    assert ope.switch_dr(**TINY, tau=1.0) == pytest.approx(0.56 + (-0.32 + 0.15) / 4)  # only w <= 1 is corrected
    shrunk = np.array([1.6, 0.8, 1.6, 0.25]) / (np.array([1.6, 0.8, 1.6, 0.25]) ** 2 + 1)  # λ = 1
    assert ope.dr_os(**TINY, lambda_=1.0) == pytest.approx(0.56 + (shrunk * (REWARD - [0.6, 0.4, 0.6, 0.4])).mean())


def test_estimator_limits_and_identities():
    assert ope.dr_os(**TINY, lambda_=0.0) == pytest.approx(ope.dm(**TINY))
    assert ope.dr_os(**TINY, lambda_=np.inf) == pytest.approx(ope.dr(**TINY))
    assert ope.switch_dr(**TINY, tau=np.inf) == pytest.approx(ope.dr(**TINY))
    assert ope.switch_dr(**TINY, tau=0.0) == pytest.approx(ope.dm(**TINY))
    # a reward model of zeros leaves DR's correction alone: DR is IPS
    assert ope.dr(**TINY | {"estimated_rewards_by_reg_model": np.zeros_like(QHAT)}) == pytest.approx(ope.ips(**TINY))
    # a reward model that reproduces the logged rewards leaves nothing to correct: DR is DM
    exact = QHAT.copy()
    exact[np.arange(4), ACTION, 0] = REWARD
    assert ope.dr(**TINY | {"estimated_rewards_by_reg_model": exact}) == pytest.approx(
        ope.dm(**TINY | {"estimated_rewards_by_reg_model": exact}))
    # a target policy that never takes a logged action gives every round weight 0: DR is DM, IPS is 0
    elsewhere = np.zeros_like(PI)
    elsewhere[np.arange(4), 1 - ACTION, 0] = 1.0
    assert ope.dr(**TINY | {"action_dist": elsewhere}) == pytest.approx(ope.dm(**TINY | {"action_dist": elsewhere}))
    assert ope.ips(**TINY | {"action_dist": elsewhere}) == 0.0
    # evaluating the logging policy itself: every weight is 1 and IPS, SNIPS are the logged mean reward
    logging = np.zeros_like(PI)
    logging[np.arange(4), ACTION, 0] = PSCORE
    logging[np.arange(4), 1 - ACTION, 0] = 1 - PSCORE
    assert ope.ips(**TINY | {"action_dist": logging}) == pytest.approx(REWARD.mean())
    assert ope.snips(**TINY | {"action_dist": logging}) == pytest.approx(REWARD.mean())


def _bandit(n_rounds=2_000, n_actions=5, seed=0, low=0.02, high=0.3):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(low, high, (n_rounds, n_actions))
    logging = ope.softmax_policy(rng.normal(size=(n_rounds, n_actions)), temperature=1.0)
    target = ope.softmax_policy(np.log(truth) + rng.normal(0, 0.3, truth.shape), temperature=0.5)
    return truth, logging, target


def test_ips_is_unbiased_and_dm_with_a_wrong_model_is_not():
    truth, logging, target = _bandit()
    value = ope.policy_value(target, truth[:, :, None])
    wrong = np.full(truth.shape + (1,), truth.mean())  # a reward model that knows only the mean
    ips, dm = [], []
    for seed in range(300):
        log = ope.simulate_log(truth, logging, random_state=seed)
        ips.append(ope.ips(**log.kwargs, action_dist=target))
        dm.append(ope.dm(action_dist=target, estimated_rewards_by_reg_model=wrong))
    ips = np.array(ips)
    assert abs(ips.mean() - value) < 3 * ips.std(ddof=1) / np.sqrt(len(ips)), (ips.mean(), value)
    assert abs(np.mean(dm) - value) > 0.01  # the target policy picks the good ads; a flat model cannot see that


def test_dr_beats_ips_with_a_good_reward_model():
    # DR's correction multiplies r - q̂ instead of r: with rewards that are often 1 (click rates of 40-95%) it is
    # much smaller than IPS's term; at low click rates r - q̂ is mostly r and the gain is small (chapter 09)
    truth, logging, target = _bandit(low=0.4, high=0.95)
    value = ope.policy_value(target, truth[:, :, None])
    noisy = np.clip(truth + np.random.default_rng(9).normal(0, 0.02, truth.shape), 0, 1)[:, :, None]
    errors = {"ips": [], "dr": []}
    for seed in range(100):
        log = ope.simulate_log(truth, logging, random_state=seed)
        errors["ips"].append(ope.ips(**log.kwargs, action_dist=target) - value)
        errors["dr"].append(ope.dr(**log.kwargs, action_dist=target, estimated_rewards_by_reg_model=noisy) - value)
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errors.items()}
    assert rmse["dr"] < 0.8 * rmse["ips"], rmse


def test_simulate_log_draws_from_the_logging_policy():
    truth, logging, _ = _bandit(n_rounds=20_000)
    log = ope.simulate_log(truth, logging, random_state=1)
    assert log.pscore == pytest.approx(logging[np.arange(len(log)), log.action, 0])
    shares = np.bincount(log.action, minlength=5) / len(log)
    assert shares == pytest.approx(logging[:, :, 0].mean(0), abs=0.01)
    assert log.reward.mean() == pytest.approx(ope.policy_value(logging, truth[:, :, None]), abs=0.01)
    again = ope.simulate_log(truth, logging, random_state=1)
    assert np.array_equal(log.action, again.action) and np.array_equal(log.reward, again.reward)


def test_softmax_policy_temperature():
    scores = np.array([[0.0, 1.0, 3.0]])
    hot, cold = ope.softmax_policy(scores, 100.0), ope.softmax_policy(scores, 0.01)
    assert hot[0, :, 0] == pytest.approx([1 / 3] * 3, abs=0.01) and cold[0, 2, 0] == pytest.approx(1.0)
    with pytest.raises(DataError, match="temperature"):
        ope.softmax_policy(scores, 0.0)


def test_bootstrap_interval_reruns_the_estimator():
    truth, logging, target = _bandit()
    log = ope.simulate_log(truth, logging, random_state=0)
    ci = ope.bootstrap_ci(ope.snips, **log.kwargs, action_dist=target, n_bootstrap_samples=200, random_state=0)
    assert ci["low"] < ci["estimate"] < ci["high"] and ci["estimate"] == ope.snips(**log.kwargs, action_dist=target)
    assert ci == ope.bootstrap_ci(ope.snips, **log.kwargs, action_dist=target, n_bootstrap_samples=200, random_state=0)
    narrow = ope.bootstrap_ci(ope.snips, **log.kwargs, action_dist=target, alpha=0.5, n_bootstrap_samples=200,
                              random_state=0)
    assert ci["low"] < narrow["low"] < narrow["high"] < ci["high"]


def test_weight_diagnostics():
    assert ope.effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert ope.effective_sample_size(np.r_[1.0, np.zeros(49)]) == pytest.approx(1)
    d = ope.weight_diagnostics(ACTION, PSCORE, PI)
    assert d["max_weight"] == pytest.approx(1.6) and d["mean_weight"] == pytest.approx(4.25 / 4)
    assert d["ess"] == pytest.approx(4.25**2 / (1.6**2 * 2 + 0.8**2 + 0.25**2))


def test_cross_fit_never_predicts_a_round_with_a_model_that_saw_it():
    seen = ope.cross_fit(lambda train: set(train.tolist()),
                         lambda model, rounds: np.array([[[r in model]] for r in rounds], dtype=float), 100, n_folds=4)
    assert seen.shape == (100, 1, 1) and seen.sum() == 0
    with pytest.raises(DataError, match="n_folds"):
        ope.cross_fit(lambda t: None, lambda m, r: r, 10, n_folds=1)


@pytest.mark.parametrize("change, message", [
    ({"pscore": np.array([0.5, 0.0, 0.5, 0.8])}, "pscore must lie in"),
    ({"pscore": np.array([0.5, 1.2, 0.5, 0.8])}, "pscore must lie in"),
    ({"action": np.array([0, 2, 0, 1])}, "action ids"),
    ({"action": np.array([0.0, 1.0, 0.0, 1.0])}, "integer"),
    ({"reward": np.array([1.0, 0.0, 0.0])}, "reward has 3 rounds"),
    ({"reward": np.array([1.0, np.nan, 0.0, 1.0])}, "reward has missing"),
    ({"action_dist": PI * 0.9}, "sum to 1"),
    ({"action_dist": PI[:, :, 0]}, "shape"),
    ({"estimated_rewards_by_reg_model": QHAT[:3]}, "estimated_rewards_by_reg_model has shape"),
    ({"position": np.array([0, 1, 0, 0])}, "position ids"),
])
def test_bad_inputs_raise_named_errors(change, message):
    with pytest.raises(DataError, match=message):
        ope.dr(**TINY | change)


def test_bad_hyperparameters():
    with pytest.raises(DataError, match="clip"):
        ope.ips(**TINY, clip=0.0)
    with pytest.raises(DataError, match="tau"):
        ope.switch_dr(**TINY, tau=-1.0)
    with pytest.raises(DataError, match="lambda_"):
        ope.dr_os(**TINY, lambda_=-1.0)


def test_read_obd_sample():
    log = ope.read_obd("random")
    assert len(log) == 10_000 and log.n_actions == 80 and log.n_positions == 3
    assert set(np.unique(log.position)) == {0, 1, 2} and np.allclose(log.pscore, 1 / 80)  # uniform over 80 items
    assert set(np.unique(log.reward)) == {0.0, 1.0} and 0 < log.reward.mean() < 0.02
    assert {"timestamp", "user_feature_0"} <= set(log.context.columns) and log.context["timestamp"].is_monotonic_increasing
    bts = ope.read_obd("bts")
    assert len(bts) == 10_000 and bts.pscore.std() > 0  # BTS's propensities vary with the item and slot
    assert np.array_equal(ope.read_obd(path=ope.obd_path("random")).action, log.action)


def test_read_obd_errors(tmp_path):
    with pytest.raises(DataError, match="behavior_policy"):
        ope.read_obd("greedy")
    with pytest.raises(DataError, match="no such file"):
        ope.read_obd(data_path=tmp_path)
    (tmp_path / "bad.csv").write_text(",a,b\n0,1,2\n")
    with pytest.raises(DataError, match="missing columns"):
        ope.read_obd(path=tmp_path / "bad.csv")


def test_bts_action_dist():
    dist = ope.bts_action_dist(n_rounds=2, n_sim=20_000)
    assert dist.shape == (2, 80, 3) and np.allclose(dist.sum(axis=1), 1.0)
    assert np.array_equal(dist, ope.bts_action_dist(n_rounds=2, n_sim=20_000))  # random_state=0 by default
    import json

    prior = json.loads((ope.obd_path().parents[3] / "bts_prior.json").read_text())["all"]
    mean = np.array(prior["alpha"]) / (np.array(prior["alpha"]) + np.array(prior["beta"]))
    assert dist[0, :, 0].argmax() in np.argsort(-mean)[:3]  # the first slot goes mostly to a top prior item
    with pytest.raises(DataError, match="campaign"):
        ope.bts_action_dist("kids")


def test_twin_bandit_knows_the_truth_and_scores_candidates():
    bandit = ope.twin_bandit(60, n_candidates=3, history=3_000, seed=0)
    assert bandit.expected_reward.shape == (60, 3) and set(bandit.logits) == {"old", "new"}
    assert np.array_equal(bandit.expected_reward.ravel(), bandit.traffic["p_click"].to_numpy())
    chosen = bandit.candidates(np.array([0, 5]), np.array([2, 1]))
    assert chosen["p_click"].tolist() == [bandit.expected_reward[0, 2], bandit.expected_reward[5, 1]]
    assert len(bandit.candidates(np.arange(4))) == 12
    log = ope.simulate_log(bandit.expected_reward[[0, 5]], np.full((2, 3, 1), 1 / 3), random_state=0)
    shown = bandit.logged(np.array([0, 5]), log)  # the rows a reward model learns from: the shown ad, its click
    assert shown["p_click"].tolist() == bandit.expected_reward[[0, 5], log.action].tolist()
    assert shown["click"].tolist() == log.reward.astype(int).tolist()
    p = bandit.predict(bandit.models["old"], bandit.candidates(np.arange(60))).reshape(60, 3)
    assert np.allclose(np.log(p / (1 - p)), bandit.logits["old"], atol=1e-4)  # the logits are the model's
    again = ope.twin_bandit(60, n_candidates=3, history=3_000, seed=0)
    assert np.array_equal(again.logits["new"], bandit.logits["new"])  # seeded: the same command, the same numbers
    with pytest.raises(DataError, match="candidates"):
        ope.twin_bandit(10, n_candidates=1)


def test_repeat_estimates_and_error_table():
    truth, logging, target = _bandit(n_rounds=500)
    runs = ope.repeat_estimates(truth, logging, target, {"IPS": ope.ips, "DM": ope.dm}, [100, None], 5,
                                np.zeros(truth.shape + (1,)), random_state=0)
    assert len(runs) == 2 * 5 * 2 and set(runs["n_rounds"]) == {100, 500}
    assert np.allclose(runs["truth"], ope.policy_value(target, truth))
    table = ope.error_table(runs)
    assert table.loc[(500, "DM"), "bias"] == pytest.approx(-ope.policy_value(target, truth))  # a zero reward model
    assert np.allclose(table["rmse"] ** 2, table["bias"] ** 2 + table["std"] ** 2)
    with pytest.raises(DataError, match="exceeds"):
        ope.repeat_estimates(truth, logging, target, {"IPS": ope.ips}, [1_000], 1)


def test_estimator_errors_figure():
    from ctrkit import plots

    truth, logging, target = _bandit(n_rounds=300)
    table = ope.error_table(ope.repeat_estimates(truth, logging, target, {"IPS": ope.ips, "SNIPS": ope.snips},
                                                 [100, 300], 3, random_state=0))
    fig = plots.estimator_errors(table)
    assert len(fig.data) == 3 * 2 and {t.name for t in fig.data} == {"IPS", "SNIPS"}
    assert "·" in fig.layout.xaxis.title.text and "·" in fig.layout.legend.title.text  # both languages
