"""The learned risk score (fulfillment/risk_model.py) on hand-built features: the threshold
keeps the honest orders held by rules + model within the target on the validation slice and
is chosen from that slice alone, unreviewed rows are not fitted on, the version is a hash of
settings and window, the figures count what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fulfillment.risk_model import (
    FEATURES,
    combine,
    hold_figures,
    model_score,
    model_version,
    train,
)
from fulfillment.risk_rules import LearnedScore

SETTINGS = LearnedScore(max_iter=30, honest_hold_target=0.012)


def _data(n: int = 3000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    bad = rng.random(n) < 0.03
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=list(FEATURES))
    # bad orders: more buyers on the address, cheaper goods; half of them look honest
    loud = bad & (rng.random(n) < 0.5)
    x.loc[loud, "buyers_on_address"] += 4
    x.loc[loud, "log_goods_value"] -= 2
    times = pd.Series(pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(n), "min"))
    return x, bad, times


def _validation(times: pd.Series) -> np.ndarray:
    return (times >= times.quantile(1 - SETTINGS.calibration_share)).to_numpy()


def test_threshold_keeps_rules_and_model_within_the_target_on_the_validation_slice() -> None:
    x, bad, times = _data()
    rules_hold = np.zeros(len(x), bool)
    rules_hold[::250] = True  # the rules hold a few (honest or not): they count in the target
    model = train(x, bad, rules_hold, times, SETTINGS)
    val = _validation(times)
    held = model.hold(x[val], rules_hold[val])
    honest = ~bad[val]
    assert (held & honest).sum() <= int(SETTINGS.honest_hold_target * honest.sum())
    assert (held & bad[val]).sum() > (rules_hold[val] & bad[val]).sum()  # it adds some bad ones
    assert model.validation["held"] == held.sum()
    # the rules' holds stay held whatever the model says
    assert model.hold(x[:10], np.ones(10, bool)).all()
    # rules that already use up the target leave the model nothing to add
    busy = train(x, bad, np.arange(len(x)) % 50 == 0, times, SETTINGS)
    assert busy.threshold == 1.0


def test_threshold_is_chosen_on_the_validation_slice_alone() -> None:
    x, bad, times = _data()
    rules_hold = np.zeros(len(x), bool)
    model = train(x, bad, rules_hold, times, SETTINGS)
    val = _validation(times)
    # the cut sits on the validation slice's own honest probabilities: at most the allowed
    # number above it, and one more at it
    p = model.probability(x[val])[~bad[val]]
    allowed = int(SETTINGS.honest_hold_target * (~bad[val]).sum())
    assert (p > model.threshold).sum() <= allowed < (p >= model.threshold).sum()
    # rows fitted on do not move the cut's share: scrambling the fit slice's honest features
    # changes the estimator, and the cut still keeps the validation slice within the target
    noisy = x.copy()
    noisy.loc[~val & ~bad, "buyers_on_address"] += 4
    other = train(noisy, bad, rules_hold, times, SETTINGS)
    assert (other.probability(x[val])[~bad[val]] > other.threshold).sum() <= allowed


def test_unreviewed_rows_are_not_fitted_on_but_count_as_honest() -> None:
    x, bad, times = _data()
    rules_hold = np.zeros(len(x), bool)
    labelled = np.zeros(len(x), bool)
    labelled[::3] = True  # a third reviewed
    labelled |= bad & (np.arange(len(x)) % 2 == 0)  # and half the bad ones
    model = train(x, bad & labelled, rules_hold, times, SETTINGS, labelled=labelled)
    val = _validation(times)
    unknown_or_honest = ~(bad & labelled)[val]
    held = model.hold(x[val], rules_hold[val])
    assert (held & unknown_or_honest).sum() <= int(
        SETTINGS.honest_hold_target * unknown_or_honest.sum()
    )
    with pytest.raises(ValueError, match="both bad and honest"):
        train(x, bad, rules_hold, times, SETTINGS, labelled=bad)


def test_version_is_a_hash_of_settings_and_window() -> None:
    window = ("2026-11-01T00:00:00+00:00", "2026-11-03T00:00:00+00:00")
    v = model_version(SETTINGS, window, 100)
    assert v == model_version(SETTINGS, window, 100) and v.startswith("rm-") and len(v) == 15
    assert v != model_version(SETTINGS, (window[0], "2026-11-04T00:00:00+00:00"), 100)
    assert v != model_version(LearnedScore(max_iter=31), window, 100)
    x, bad, times = _data()
    one = train(x, bad, np.zeros(len(x), bool), times, SETTINGS)
    two = train(x, bad, np.zeros(len(x), bool), times, SETTINGS)
    assert one.version == two.version and one.threshold == two.threshold


def test_hold_figures() -> None:
    held = np.array([1, 1, 0, 0, 1, 0, 0, 0], bool)
    bad = np.array([1, 0, 1, 0, 0, 0, 0, 0], bool)
    f = hold_figures(held, bad)
    assert (f["bad"], f["held"], f["recall"], f["precision"]) == (2, 3, 0.5, 1 / 3)
    assert f["honest_held_share"] == 2 / 6


def test_model_score_puts_the_cut_on_the_review_threshold() -> None:
    p = np.array([0.0, 0.01, 0.02, 0.020001, 0.5, 1.0])
    s = model_score(p, threshold=0.02, review_threshold=80)
    assert s[0] == 0 and s[2] == 80 and s[-1] == 100
    assert s[3] > 80  # held by the model: above the rules' review threshold
    assert np.all(np.diff(s) >= 0)  # monotone in the probability


def test_combine_holds_what_the_rules_or_the_model_hold_and_says_which_model() -> None:
    x, bad, times = _data()
    model = train(x, bad, np.zeros(len(x), bool), times, SETTINGS)
    assessments = pd.DataFrame({
        "channel": ["tmall"] * 3, "platform_order_no": ["1", "2", "3"],
        "score": [85.0, 10.0, 10.0], "signals": [{"ip_burst": {}}, {}, {"b2b_address": {}}],
        "decision": ["review", "pass", "pass"],
    })  # fmt: skip
    p = np.array([0.0, 1.0, 0.0])
    out = combine(assessments, p, model, review_threshold=80)
    assert out["decision"].tolist() == ["review", "review", "pass"]
    assert out["rule_score"].tolist() == [85.0, 10.0, 10.0]
    assert out["score"].tolist()[0] == 85.0 and out["score"].tolist()[1] == 100.0
    assert out["score"].tolist()[2] == 10.0  # the rules' score when it is the larger
    assert set(out["model_version"]) == {model.version}
    assert out["signals"][1]["learned_score"]["model_version"] == model.version
    assert "learned_score" not in out["signals"][0] and out["signals"][2] == {"b2b_address": {}}
