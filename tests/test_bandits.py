"""ctrkit.bandits: posteriors against closed forms, LinUCB against direct solves, the simulator's common random
numbers, regret, determinism, input checks, and the last hidden layer of a ctrkit model."""

import functools

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from ctrkit import bandits
from ctrkit.errors import ConfigError, DataError

POLICIES = {"uniform": bandits.UniformRandom, "epsilon": bandits.EpsilonGreedy,
            "beta_ts": bandits.BetaBernoulliThompson, "linucb": bandits.LinUCB,
            "logistic_ts": functools.partial(bandits.LogisticThompson, refresh_every=20),
            "neural_linear": bandits.NeuralLinearThompson}


class Oracle(bandits.Policy):
    """Knows the truth: plays argmax_a q[t, a] in round t (rounds counted by its updates)."""

    def __init__(self, mean_rewards):
        super().__init__(mean_rewards.shape[1], 0)
        self.q = mean_rewards

    def select(self, x=None) -> int:
        return int(self.q[self.t].argmax())

    def update(self, x, action, reward) -> None:
        self._checked(action, reward)


# ---------------------------------------------------------------------------------------------- context-free policies

def test_beta_posterior_counts_clicks_and_non_clicks():
    ts = bandits.BetaBernoulliThompson(3, seed=0)
    for action, reward in [(0, 1), (0, 1), (0, 0), (1, 0)]:
        ts.update(None, action, reward)
    assert ts.alpha.tolist() == [3, 1, 1] and ts.beta.tolist() == [2, 2, 1]  # Beta(1 + s, 1 + f); arm 2 untouched
    assert ts.posterior_mean() == pytest.approx([3 / 5, 1 / 3, 1 / 2])
    informed = bandits.BetaBernoulliThompson(2, a0=2.0, b0=8.0)
    informed.update(None, 1, 1)
    informed.update(None, 1, 0.25)  # a fractional reward splits between the two counts
    assert informed.alpha.tolist() == [2, 3.25] and informed.beta.tolist() == [8, 8.75]


def test_thompson_picks_each_arm_with_its_posterior_probability():
    # Beta(2, 1) against Beta(1, 2): P(X > Y) = ∫ 2x (2x - x²) dx = 4/3 - 1/2 = 5/6
    ts = bandits.BetaBernoulliThompson(2, seed=1)
    ts.update(None, 0, 1)
    ts.update(None, 1, 0)
    share = np.mean([ts.select() == 0 for _ in range(20_000)])
    assert share == pytest.approx(5 / 6, abs=0.012)  # about 4.5 standard errors


def test_epsilon_greedy_tries_every_arm_then_plays_the_best_mean():
    greedy = bandits.EpsilonGreedy(3, epsilon=0.0, seed=0)
    first = []
    for reward in (0.0, 1.0, 0.5):
        first.append(greedy.select())
        greedy.update(None, first[-1], reward)
    assert sorted(first) == [0, 1, 2]  # every arm once, before any repeat
    best = first[1]
    assert all(greedy.select() == best for _ in range(20))
    assert greedy.means()[best] == 1.0
    decaying = bandits.EpsilonGreedy(4, epsilon=0.5, decay=2.0)
    assert decaying.current_epsilon() == 0.5
    for _ in range(100):
        decaying.update(None, 0, 0.0)
    assert decaying.current_epsilon() == pytest.approx(2.0 * 4 / 100)  # min(ε, c K / t)
    uniform = bandits.EpsilonGreedy(4, epsilon=1.0, seed=0)
    uniform.update(None, 0, 1.0)
    assert np.bincount([uniform.select() for _ in range(4_000)], minlength=4) / 4_000 == pytest.approx([0.25] * 4,
                                                                                                       abs=0.03)


# --------------------------------------------------------------------------------------------------------- LinUCB

def test_linucb_sherman_morrison_matches_a_direct_solve():
    rng = np.random.default_rng(0)
    policy = bandits.LinUCB(3, 4, alpha=0.7, ridge=2.0)
    X, arms, r = rng.normal(size=(25, 4)), rng.integers(0, 3, 25), rng.random(25)
    for x, a, reward in zip(X, arms, r):
        policy.update(x, a, reward)
    x = rng.normal(size=4)
    expected = []
    for a in range(3):
        A = 2.0 * np.eye(4) + X[arms == a].T @ X[arms == a]
        b = X[arms == a].T @ r[arms == a]
        np.testing.assert_allclose(policy.A_inv[a], np.linalg.inv(A), atol=1e-10)
        np.testing.assert_allclose(policy.theta[a], np.linalg.solve(A, b), atol=1e-10)
        expected.append(np.linalg.solve(A, b) @ x + 0.7 * np.sqrt(x @ np.linalg.solve(A, x)))
    np.testing.assert_allclose(policy.scores(x), expected, atol=1e-10)
    assert policy.select(x) == int(np.argmax(expected))


def test_linucb_shared_model_reads_one_row_per_arm():
    rng = np.random.default_rng(1)
    policy = bandits.LinUCB(3, 2, alpha=1.0, shared=True)
    rows, rewards = [], []
    for _ in range(10):
        x, a = rng.normal(size=(3, 2)), int(rng.integers(3))
        policy.update(x, a, 1.0)
        rows.append(x[a])
        rewards.append(1.0)
    A = np.eye(2) + np.array(rows).T @ np.array(rows)
    theta = np.linalg.solve(A, np.array(rows).T @ np.array(rewards))
    x = rng.normal(size=(3, 2))
    by_hand = x @ theta + np.sqrt(np.einsum("kd,kd->k", x, np.linalg.solve(A, x.T).T))
    np.testing.assert_allclose(policy.scores(x), by_hand, atol=1e-10)
    with pytest.raises(DataError, match=r"\(3, 2\)"):
        policy.select(np.zeros(2))  # one vector for all arms cannot tell them apart


# ------------------------------------------------------------------------------------------ logistic Thompson sampling

def _penalised_nll(w, m, Q, X, y):
    z = X @ w
    return 0.5 * (w - m) @ Q @ (w - m) + np.sum(np.logaddexp(0, z) - y * z)


def _scipy_map(m, Q, X, y):
    return minimize(_penalised_nll, m, args=(m, Q, X, y), method="BFGS", options={"gtol": 1e-10}).x


@pytest.mark.parametrize("diagonal", [False, True])
def test_laplace_update_is_the_map_and_the_hessian_there(diagonal):
    rng = np.random.default_rng(2)
    X = np.c_[rng.normal(size=(60, 2)), np.ones(60)]
    y = (rng.random(60) < expit(X @ [1.0, -2.0, -0.5])).astype(float)
    m = np.array([0.2, -0.1, 0.3])
    q = np.array([2.0, 0.5, 1.0])
    Q = np.diag(q) if diagonal else np.array([[2.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 1.0]])
    mean, precision = bandits.laplace_update(m, q if diagonal else Q, X, y)
    w = _scipy_map(m, Q, X, y)
    np.testing.assert_allclose(mean, w, atol=1e-5)
    s = expit(X @ w) * (1 - expit(X @ w))
    hessian = Q + X.T @ np.diag(s) @ X
    np.testing.assert_allclose(precision, np.diag(hessian) if diagonal else hessian, rtol=1e-5)


def test_logistic_thompson_refreshes_each_arm_from_its_prior_in_batches():
    rng = np.random.default_rng(3)
    policy = bandits.LogisticThompson(2, 3, seed=0, prior_precision=0.5, refresh_every=30)
    X, arms = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    y = (rng.random(30) < 0.3).astype(float)
    for i in range(29):
        policy.update(X[i], arms[i], y[i])
    assert not policy.mean.any()  # nothing folded in before the batch is full
    policy.update(X[29], arms[29], y[29])
    for a in range(2):
        rows = arms == a
        w = _scipy_map(np.zeros(3), 0.5 * np.eye(3), X[rows], y[rows])
        np.testing.assert_allclose(policy.mean[a], w, atol=1e-5)
        s = expit(X[rows] @ w) * (1 - expit(X[rows] @ w))
        np.testing.assert_allclose(policy.precision[a], 0.5 * np.eye(3) + X[rows].T @ np.diag(s) @ X[rows], rtol=1e-5)
    draws = np.array([policy.sample()[1] for _ in range(20_000)])  # θ ~ N(m, Q⁻¹)
    np.testing.assert_allclose(draws.mean(0), policy.mean[1], atol=0.05)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(policy.precision[1]), rtol=0.05, atol=0.01)


# ------------------------------------------------------------------------------------------ neural-linear Thompson

@pytest.mark.parametrize("intercept", [False, True])
def test_neural_linear_posterior_is_the_closed_form(intercept):
    rng = np.random.default_rng(4)
    policy = bandits.NeuralLinearThompson(2, 3, prior_precision=0.5, a0=3.0, b0=2.0, intercept=intercept)
    X, arms, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40), rng.random(40)
    for x, a, r in zip(X, arms, y):
        policy.update(x, a, r)
    for a in range(2):
        Phi = np.c_[X[arms == a], np.ones((arms == a).sum())] if intercept else X[arms == a]
        ya = y[arms == a]
        Lam = 0.5 * np.eye(Phi.shape[1]) + Phi.T @ Phi
        mu = np.linalg.solve(Lam, Phi.T @ ya)
        np.testing.assert_allclose(policy.precision[a], Lam, atol=1e-10)
        np.testing.assert_allclose(policy.mean[a], mu, atol=1e-10)
        np.testing.assert_allclose(policy.covariance(a), np.linalg.inv(Lam), atol=1e-10)
        assert policy.a[a] == pytest.approx(3.0 + len(ya) / 2)
        assert policy.b[a] == pytest.approx(2.0 + 0.5 * (ya @ ya - mu @ Lam @ mu))


def test_neural_linear_draws_have_the_posterior_covariance():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 2))
    y = X @ [0.5, -1.0] + rng.normal(0, 0.3, 50)
    fixed = bandits.NeuralLinearThompson(1, 2, seed=0, noise_variance=0.09, intercept=False)
    learnt = bandits.NeuralLinearThompson(1, 2, seed=0, a0=2.0, b0=1.0, intercept=False)
    for x, r in zip(X, y):
        fixed.update(x, 0, r)
    for x, r in zip(X[:4], y[:4]):  # a = 4: the draws of σ² matter (b / (a - 1) is a third above b / a)
        learnt.update(x, 0, r)
    draws = np.array([fixed.sample()[0] for _ in range(20_000)])
    np.testing.assert_allclose(np.cov(draws.T), 0.09 * fixed.covariance(), rtol=0.05, atol=1e-5)
    # with σ² ~ IG(a, b) the draws are Student t, whose covariance is E[σ²] Λ⁻¹ = b / (a - 1) · Λ⁻¹
    draws = np.array([learnt.sample()[0] for _ in range(20_000)])
    np.testing.assert_allclose(np.cov(draws.T), learnt.b[0] / (learnt.a[0] - 1) * learnt.covariance(), rtol=0.1,
                               atol=1e-4)
    np.testing.assert_allclose(draws.mean(0), learnt.mean[0], atol=0.03)


@pytest.fixture(scope="module")
def tiny(small_df):
    from ctrkit.preprocessing import CTRPreprocessor, CTRTensors

    pre = CTRPreprocessor().fit(small_df)
    t = CTRTensors.from_frame(pre.transform(small_df.head(64)), pre.spec)
    return pre.spec, t.x_dense, t.x_sparse


@pytest.mark.parametrize("name", ["transformer", "dcnv2", "autoint", "deepfm"])
def test_last_hidden_is_what_the_output_layer_reads(tiny, name):
    import torch

    from ctrkit.models import build, fm_interaction

    spec, x_dense, x_sparse = tiny
    torch.manual_seed(0)
    model = build(name, spec).train()
    h = bandits.last_hidden(model, x_dense, x_sparse, batch_size=25)  # three batches, the last a short one
    assert model.training and isinstance(h, np.ndarray) and h.shape == (64, model.out.in_features)
    model.eval()
    with torch.no_grad():
        logits = model(x_dense, x_sparse)
        from_hidden = model.out(torch.from_numpy(h)).squeeze(-1)
        if name == "deepfm":  # out reads the deep part; the linear and FM terms come on top
            w, v = model.embed(x_dense, x_sparse)
            from_hidden = from_hidden + model.linear.head((w,)) + fm_interaction(v)
    torch.testing.assert_close(from_hidden, logits, atol=1e-5, rtol=1e-5)
    as_numpy = bandits.last_hidden(model, x_dense.numpy().astype(np.float64), x_sparse.numpy())  # cast to the model's
    np.testing.assert_allclose(as_numpy, h, atol=1e-6)


def test_last_hidden_refuses_models_without_an_output_layer(tiny):
    from ctrkit.models import build

    spec, x_dense, x_sparse = tiny
    for name, hparams in [("lr", {}), ("fm", {}), ("transformer", {"n_outputs": 0})]:
        with pytest.raises(ConfigError, match="no final linear layer"):
            bandits.last_hidden(build(name, spec, **hparams), x_dense, x_sparse)


# ------------------------------------------------------------------------------------------------------ simulation

def test_logistic_problem_has_the_base_rate_and_a_context_dependent_best_arm():
    p = bandits.logistic_problem(5_000, n_actions=10, dim=6, base_rate=0.05, seed=0)
    assert p.contexts.shape == (5_000, 6) and p.mean_rewards.shape == (5_000, 10)
    assert (p.contexts[:, -1] == 1).all() and p.mean_rewards.mean() == pytest.approx(0.05, abs=1e-6)
    assert len(np.unique(p.mean_rewards.argmax(1))) == 10  # every arm is the best somewhere
    assert bandits.best_arm_regret(p.mean_rewards)[-1] > 0.05 * 5_000  # the best single arm loses a lot
    again = bandits.logistic_problem(5_000, seed=0)
    assert np.array_equal(p.contexts, again.contexts) and np.array_equal(p.mean_rewards, again.mean_rewards)
    per_arm = bandits.logistic_problem(100, n_actions=4, dim=3, per_arm=True, seed=1)
    assert per_arm.contexts.shape == (100, 4, 3) and per_arm.mean_rewards.shape == (100, 4)
    flat = bandits.bernoulli_problem(100, n_actions=5, base_rate=0.1, seed=0)
    assert (flat.mean_rewards == flat.mean_rewards[0]).all() and flat.mean_rewards[0].mean() == pytest.approx(0.1)
    assert bandits.best_arm_regret(flat.mean_rewards)[-1] == 0


def test_simulate_uses_common_random_numbers():
    p = bandits.logistic_problem(2_000, n_actions=4, dim=3, seed=0)
    u = bandits.common_random_numbers(2_000, 4, seed=7)
    clicks = u < p.mean_rewards
    runs = [bandits.simulate(make(4, 3, seed=1), p.contexts, p.mean_rewards, seed=7)
            for make in (bandits.UniformRandom, bandits.LinUCB)]
    for run in runs:
        assert np.array_equal(run.rewards, clicks[np.arange(2_000), run.actions])
    same = runs[0].actions == runs[1].actions
    assert same.sum() > 100 and np.array_equal(runs[0].rewards[same], runs[1].rewards[same])
    assert not np.array_equal(u, bandits.common_random_numbers(2_000, 4, seed=8))
    # the clicks have their own stream of the seed: a policy seeded with the same number does not reuse their draws
    assert not np.array_equal(u, np.random.default_rng(7).random((2_000, 4)))


def test_regret_is_zero_for_the_oracle_and_positive_otherwise():
    p = bandits.logistic_problem(1_000, n_actions=5, dim=4, seed=3)
    oracle = bandits.simulate(Oracle(p.mean_rewards), p.contexts, p.mean_rewards, seed=0)
    assert np.array_equal(oracle.regret, np.zeros(1_000)) and oracle.cumulative_regret[-1] == 0
    run = bandits.simulate(bandits.UniformRandom(5, seed=0), p.contexts, p.mean_rewards, seed=0)
    rows = np.arange(1_000)
    np.testing.assert_allclose(run.regret, p.mean_rewards.max(1) - p.mean_rewards[rows, run.actions])
    assert (run.regret >= 0).all() and run.cumulative_regret[-1] > 0
    np.testing.assert_allclose(run.cumulative_regret, np.cumsum(run.regret))


@pytest.mark.parametrize("name", POLICIES)
def test_same_seeds_same_run(name):
    p = bandits.logistic_problem(600, n_actions=4, dim=3, seed=2)
    first, again, other = (bandits.simulate(POLICIES[name](4, 3, seed=s), p.contexts, p.mean_rewards, seed=5)
                           for s in (0, 0, 1))
    assert np.array_equal(first.actions, again.actions) and np.array_equal(first.regret, again.regret)
    assert not np.array_equal(first.actions, other.actions)  # the policy's own seed matters


def test_contextual_policies_learn_and_context_free_ones_cannot():
    p = bandits.logistic_problem(3_000, n_actions=5, dim=4, seed=0)
    runs = bandits.compare(POLICIES, p, seeds=[0])
    final = runs[runs.t == 3_000].set_index("policy")["cumulative_regret"]
    for contextual in ("linucb", "logistic_ts", "neural_linear"):
        assert final[contextual] < 0.6 * min(final["uniform"], final["epsilon"], final["beta_ts"]), final.to_dict()
    for context_free in ("epsilon", "beta_ts"):  # no better than the best single arm (up to a little luck)
        assert final[context_free] > 0.9 * bandits.best_arm_regret(p.mean_rewards)[-1]


def test_compare_and_regret_table():
    problem = functools.partial(bandits.logistic_problem, 300, n_actions=3, dim=3)
    policies = {"uniform": bandits.UniformRandom, "ucb": functools.partial(bandits.LinUCB, alpha=0.5)}
    runs = bandits.compare(policies, problem, seeds=[0, 1])
    assert len(runs) == 2 * 2 * 300 and list(runs.columns) == ["policy", "seed", "t", "action", "reward", "regret",
                                                              "cumulative_regret"]
    p1 = problem(seed=1)
    direct = bandits.simulate(bandits.LinUCB(3, 3, seed=1, alpha=0.5), p1.contexts, p1.mean_rewards, seed=1)
    mine = runs[(runs.policy == "ucb") & (runs.seed == 1)]
    assert np.array_equal(mine.action.to_numpy(), direct.actions)
    table = bandits.regret_table(runs, horizons=[100, 300])
    at = runs[(runs.policy == "ucb") & (runs.t == 300)].cumulative_regret
    assert table.loc["ucb", (300, "mean")] == pytest.approx(at.mean())
    assert table.loc["ucb", (300, "std")] == pytest.approx(at.std(ddof=1))
    assert list(table.index) == ["uniform", "ucb"]
    with pytest.raises(DataError, match="horizons"):
        bandits.regret_table(runs, horizons=[1_000])


def test_bad_inputs_are_data_errors():
    q = np.full((10, 3), 0.1)
    with pytest.raises(DataError, match="mean_rewards"):
        bandits.simulate(bandits.UniformRandom(3), np.ones((10, 1)), q[:, :, None])
    with pytest.raises(DataError, match="probabilities"):
        bandits.simulate(bandits.UniformRandom(3), np.ones((10, 1)), q + 1)
    with pytest.raises(DataError, match="contexts"):
        bandits.simulate(bandits.UniformRandom(3), np.ones((9, 1)), q)
    with pytest.raises(DataError, match="contexts"):
        bandits.simulate(bandits.UniformRandom(3), np.ones((10, 4, 2)), q)
    with pytest.raises(DataError, match="arms"):
        bandits.simulate(bandits.UniformRandom(4), np.ones((10, 1)), q)
    with pytest.raises(DataError, match="dim"):
        bandits.simulate(bandits.LinUCB(3, 2), np.ones((10, 1)), q)
    with pytest.raises(DataError, match="shape"):
        bandits.LogisticThompson(3, 2).select(np.ones(3))
    with pytest.raises(DataError, match="action"):
        bandits.LinUCB(3, 2).update(np.ones(2), 3, 1.0)
    with pytest.raises(DataError, match="reward"):
        bandits.BetaBernoulliThompson(3).update(None, 0, 2.0)
    with pytest.raises(DataError, match="reward"):
        bandits.UniformRandom(3).update(None, 0, np.nan)
    with pytest.raises(DataError, match="seed"):
        bandits.common_random_numbers(10, 3, seed=-1)
    with pytest.raises(DataError):
        bandits.LinUCB(3, 0)
    with pytest.raises(DataError, match="posterior"):
        bandits.LogisticThompson(3, 2, posterior="exact")
    with pytest.raises(DataError, match="base_rate"):
        bandits.logistic_problem(10, base_rate=1.5)
