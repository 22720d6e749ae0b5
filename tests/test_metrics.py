import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from ctrkit.metrics import auc, logloss, pr_auc


def test_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.random(2_000) < 0.3
    p = np.clip(0.3 + 0.2 * y + rng.normal(0, 0.2, 2_000), 0.01, 0.99)
    p[:50] = 0.5  # ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)
    assert pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_pr_auc_of_a_random_score_is_the_base_rate():
    rng = np.random.default_rng(1)
    y = rng.random(200_000) < 0.05
    assert pr_auc(y, rng.random(y.size)) == pytest.approx(0.05, abs=0.005)
    assert pr_auc(y, y.astype(float)) == 1.0
    with pytest.raises(ValueError, match="without positives"):
        pr_auc([0, 0], [0.1, 0.2])


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="one class"):
        auc([1, 1], [0.2, 0.3])
