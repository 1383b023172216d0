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
