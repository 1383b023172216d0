"""bench/risk_quality.py at its --quick size: the figures are computed on a later window the
model did not see, against verdicts the scorer did not write (some bad orders fire no rule,
some honest ones fire one), and they add up from the rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "risk_quality.py"


def _bench():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("risk_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # 3 s quiet, ~20 s on a busy machine: a 6,000-order world and a model
def test_quick_run_measures_against_hidden_truth(capsys) -> None:
    result = _bench().main(["--quick"])
    out = capsys.readouterr().out
    assert "rules_and_model" in out and "honest held" in out
    test = result["test"]
    assert result["test_window"][0] == result["train_window"][1]  # later, not overlapping
    # the model was fitted and its threshold chosen on orders paid before the test window
    assert pd.Timestamp(result["model_window"][1]) < pd.Timestamp(result["test_window"][0])
    assert result["validation"]["orders"] > 0
    assert result["train_bad"] >= 10 and result["rules"]["bad"] >= 10
    fired = test["signals"].map(len).gt(0).to_numpy()
    bad = test["bad"].to_numpy()
    # the verdicts are no function of the fired rules
    assert (bad & ~fired).sum() >= 1 and (~bad & fired).sum() >= 20
    assert (~bad & test["rules_hold"].to_numpy()).sum() >= 1  # honest held by the rules
    for name, column in (("rules", "rules_hold"), ("rules_and_model", "model_hold")):
        held = test[column].to_numpy()
        figures = result[name]
        assert figures["recall"] == (held & bad).sum() / bad.sum()
        assert figures["honest_held_share"] == (held & ~bad).sum() / (~bad).sum()
        assert 0 < figures["recall"] <= 1 and 0 <= figures["honest_held_share"] < 0.05
    # rules + model holds everything the rules hold
    assert np.all(test["model_hold"].to_numpy() >= test["rules_hold"].to_numpy())
    assert result["model_version"].startswith("rm-")


def test_pipeline_labels_know_only_what_was_reported_before_the_cut() -> None:
    from types import SimpleNamespace

    from sandbox.risk_feedback import RiskFeedback

    cut = pd.Timestamp("2026-11-20", tz="UTC")
    keys = pd.MultiIndex.from_tuples([("jd", f"N{i}") for i in range(6)])
    paid = pd.Series([cut - pd.Timedelta(days=d) for d in (20, 20, 20, 20, 20, 3)], index=keys)
    bad = np.array([True, True, True, False, False, True])
    rules_hold = np.array([True, False, False, False, False, False])

    def fb(no: str, kind: str, verdict: str, days_before_cut: float) -> RiskFeedback:
        at = (cut - pd.Timedelta(days=days_before_cut)).to_pydatetime()
        return RiskFeedback(f"F{no}", kind, "jd", no, at, verdict, "x", 0)

    world = SimpleNamespace(risk_feedback=[
        fb("N1", "chargeback", "fraud", 10),  # known
        fb("N2", "chargeback", "fraud", -1),  # reported after the cut: not known yet
        fb("N3", "chargeback", "fraud", 10),  # friendly fraud on an honest order: bad
        fb("N4", "audit", "honest", 10),
        fb("N5", "chargeback", "fraud", 1),  # paid inside the label window
    ])  # fmt: skip
    known_bad, trained = _bench().pipeline_labels(world, keys, bad, rules_hold, paid, cut, 7)
    # N0: a reviewer's intercept; N2 bad but unreported, taken as honest
    assert known_bad.tolist() == [True, True, False, True, False, True]
    assert trained.tolist() == [True, True, True, True, True, False]
