"""The learned risk score (fulfillment/risk_model.py) on hand-built features: the threshold
keeps the honest orders it adds within the budget on the calibration slice, the version is a
hash of settings and window, the figures count what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fulfillment.risk_model import FEATURES, hold_figures, model_version, train
from fulfillment.risk_rules import LearnedScore

SETTINGS = LearnedScore(max_iter=30, honest_hold_budget=0.01)


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


def test_threshold_holds_honest_orders_within_the_budget_on_the_calibration_slice() -> None:
    x, bad, times = _data()
    rules_hold = np.zeros(len(x), bool)
    model = train(x, bad, rules_hold, times, SETTINGS)
    calib = (times >= times.quantile(1 - SETTINGS.calibration_share)).to_numpy()
    held = model.hold(x[calib], rules_hold[calib])
    honest = ~bad[calib]
    assert (held & honest).sum() <= int(SETTINGS.honest_hold_budget * honest.sum())
    assert (held & bad[calib]).sum() > 0  # it catches some of the loud bad orders
    # the rules' holds stay held whatever the model says
    assert model.hold(x[:10], np.ones(10, bool)).all()


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
