"""config/routing.yaml: matches the sandbox world, and every mistake names file, key and fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fulfillment.routing_rules import DEFAULT_PATH, load_routing_rules, resolve_hot_skus
from kernel.config import ConfigError
from sandbox import geo
from sandbox.catalog import CARRIERS, FRONT_RADIUS_KM, WAREHOUSES
from tests.fulfillment.routing_world import NOW, make_rules, rules_dict


def test_the_shipped_rule_file_loads_and_matches_the_sandbox_world() -> None:
    rules = load_routing_rules()
    assert rules.source == str(DEFAULT_PATH)
    by_id = {w.id: w for w in rules.warehouses}
    assert set(by_id) == {w.warehouse_id for w in WAREHOUSES}
    for w in WAREHOUSES:
        assert by_id[w.warehouse_id].latitude == pytest.approx(w.latitude)
        assert by_id[w.warehouse_id].longitude == pytest.approx(w.longitude)
        assert by_id[w.warehouse_id].is_front == w.is_front
    assert {c.id for c in rules.carriers} == set(CARRIERS)
    assert set(rules.remote_regions) == set(geo.REMOTE_PROVINCES)
    assert rules.thresholds.front_radius_km == FRONT_RADIUS_KM
    # the numbers
    t = rules.thresholds
    assert (t.near_km, t.freight_share, t.stock_sync_stale_minutes) == (200, 0.15, 30)
    assert t.consecutive_shipping_failures == 3
    assert (rules.score.distance, rules.score.stock, rules.score.on_time) == (0.3, 0.4, 0.3)
    assert rules.hot_skus.top_n == 50
    # a remote province is covered by EMS only
    ems = next(c for c in rules.carriers if c.id == "EMS")
    others = [c for c in rules.carriers if c.id != "EMS"]
    assert ems.covers == "all"
    assert all("新疆维吾尔自治区" not in c.covers for c in others)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _error(tmp_path: Path, data: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load_routing_rules(_write(tmp_path, data))
    return str(err.value)


def test_a_latitude_out_of_range_names_file_key_value_and_range(tmp_path: Path) -> None:
    data = rules_dict()
    data["warehouses"][2]["latitude"] = 95.3
    msg = _error(tmp_path, data)
    assert str(tmp_path / "routing.yaml") in msg
    assert "warehouses[2].latitude" in msg
    assert "95.3 is out of range -90..90" in msg


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        (lambda d: d["carriers"][1].update(on_time_rate=95), "carriers[1].on_time_rate", "0.95"),
        (
            lambda d: d["warehouses"][0].update(daily_capacity=0),
            "warehouses[0].daily_capacity",
            "greater than 0",
        ),
        (
            lambda d: d["warehouses"][0].update(capacity=10),
            "warehouses[0].capacity",
            "Extra inputs",
        ),
        (lambda d: d.update(thresholds={"freight_share": 15}), "thresholds.freight_share", "0.15"),
        (
            lambda d: d["carriers"][0].update(transit_days=[1, 2]),
            "carriers",
            "[0].transit_days: 2 values for 3 distance bands",
        ),
        (lambda d: d.update(hot_skus={"listed": ["A"], "top_n": 50}), "hot_skus", "exactly one of"),
        (lambda d: d.update(fallback={"action": "rules"}), "fallback", "rules_file"),
        (lambda d: d.update(chain=["near_stock", "near_stock"]), "chain", "listed twice"),
        (lambda d: d.update(chain=["nearest"]), "chain[0]", "near_stock"),
        (
            lambda d: d["warehouses"].append(dict(d["warehouses"][0])),
            "warehouses",
            "duplicate id ['SZ']",
        ),
        (lambda d: d.update(split_policy="cancel"), "split_policy", "'split' or 'manual_review'"),
        (lambda d: d.pop("version"), "version", "Field required"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(tmp_path: Path, change, key: str, fix: str) -> None:  # noqa: ANN001
    data = rules_dict()
    change(data)
    msg = _error(tmp_path, data)
    assert f"routing.yaml: {key}" in msg
    assert fix in msg


def test_no_national_warehouse_is_an_error(tmp_path: Path) -> None:
    data = rules_dict()
    for w in data["warehouses"]:
        w["is_national"] = False
    assert "is_national" in _error(tmp_path, data)


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_routing_rules(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_routing_rules(bad)


def test_hot_skus_top_n_over_the_window_with_deterministic_ties() -> None:
    rules = make_rules(hot_skus={"top_n": 2, "window_days": 7})
    history = pd.DataFrame(
        {
            "sku": ["X", "Y", "Z", "W", "X"],
            "qty": [5, 3, 3, 100, 1],
            "paid_at": [NOW - timedelta(days=d) for d in (1, 2, 3, 30, 6)],
        }
    )
    # W sold most but outside the window; Y and Z tie on 3: the smaller code wins
    assert resolve_hot_skus(rules, history, NOW) == {"X", "Y"}
    with pytest.raises(ValueError, match="hot_skus.top_n needs"):
        resolve_hot_skus(rules)
    assert resolve_hot_skus(make_rules()) == {"HOT1", "HOT2"}


def test_fingerprint_changes_with_any_edit() -> None:
    a = make_rules()
    b = make_rules(thresholds={"near_km": 150})
    assert a.fingerprint() == make_rules().fingerprint()
    assert a.fingerprint() != b.fingerprint()
