"""config/risk.yaml: the issue's numbers, and every mistake names file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fulfillment.risk_rules import ALL_SIGNALS, DEFAULT_PATH, load_risk_rules
from kernel.config import ConfigError


def _data() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def _error(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "risk.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_risk_rules(path)
    message = str(err.value)
    assert str(path) in message
    return message


def test_the_shipped_file_loads_with_the_issues_numbers() -> None:
    rules = load_risk_rules()
    assert rules.source == str(DEFAULT_PATH)
    assert set(rules.weights) == set(ALL_SIGNALS)
    assert (rules.review.threshold, rules.review.hold_hours) == (80, 72)
    assert {"办公室", "大厦", "写字楼", "公司", "园区", "工业园"} <= set(
        rules.validation.business_address_words
    )
    assert set(rules.validation.virtual_carrier_prefixes) == {"170", "171", "162", "165", "167"}
    assert rules.validation.first_order_yuan == 5000
    b = rules.behaviour
    assert (b.orders_per_ip_hour, b.cart_events_per_minute) == (5, 20)
    assert b.night.minutes() == (120, 240)
    assert rules.coupons.subsidy_share == 0.30
    assert {"hs_code", "declared_value"} <= set(rules.cross_border.required_fields)
    assert len(rules.fingerprint()) == 12


def test_a_weight_out_of_range_names_the_key(tmp_path: Path) -> None:
    data = _data()
    data["weights"]["ip_burst"] = 120
    assert "weights" in _error(tmp_path, data)
    assert "0..100" in _error(tmp_path, data)


def test_a_missing_weight_says_how_to_add_it(tmp_path: Path) -> None:
    data = _data()
    del data["weights"]["night_payment"]
    message = _error(tmp_path, data)
    assert "night_payment: 30" in message


def test_unknown_keys_signals_and_fields_are_errors(tmp_path: Path) -> None:
    data = _data()
    data["review"]["treshold"] = 70
    assert "review.treshold" in _error(tmp_path, data)
    data = _data()
    data["review"]["always"] = ["no_such_signal"]
    assert "review.always" in _error(tmp_path, data)
    data = _data()
    data["cross_border"]["required_fields"] = ["hs_code", "net_weight"]
    message = _error(tmp_path, data)
    assert "cross_border.required_fields" in message and "net_weight" in message


def test_prefixes_must_be_quoted_and_shares_are_fractions(tmp_path: Path) -> None:
    data = _data()
    data["validation"]["virtual_carrier_prefixes"] = [170]
    assert "validation.virtual_carrier_prefixes" in _error(tmp_path, data)
    data = _data()
    data["coupons"]["subsidy_share"] = 30
    assert "0.30 for 30 %" in _error(tmp_path, data)
    data = _data()
    data["cross_border"]["hs_code_pattern"] = "["
    assert "not a regular expression" in _error(tmp_path, data)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_risk_rules(tmp_path / "nope.yaml")
