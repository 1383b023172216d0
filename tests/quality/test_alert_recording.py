"""Alert rules and recording: config/alerts.yaml validates, `raise_alerts` writes ops.alerts
set-based with the rule's severity, owner's recipients and cool-down (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from kernel.config import ConfigError
from quality.alert_rules import KNOWN_RULES, load_alert_config
from quality.alerts import Alert, Chart, raise_alerts

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


def test_repository_alerts_yaml_has_every_rule_with_the_issue_thresholds() -> None:
    cfg = load_alert_config()
    assert set(KNOWN_RULES) <= set(cfg.rules)
    assert cfg.rules["stuck_orders"].params == {
        "stuck_hours": 24,
        "share_threshold": 0.05,
        "red_hours": 48,
    }
    assert cfg.rules["delivery_timeout"].params["rate_threshold"] == 0.15
    assert cfg.rules["price_difference"].params["share_threshold"] == 0.008
    assert cfg.rules["return_interception"].params["success_threshold"] == 0.90
    words = cfg.rules["cs_escalation"].params["complaint_words"]
    assert words == ["投诉", "工商局", "12315", "差评"]
    assert cfg.rules["stock_mismatch"].params["tolerance"] == 3
    assert cfg.rules["health_index"].params["ohi_threshold"] == 80
    assert cfg.rules["monthly_reconciliation"].params["day_of_month"] == 25
    assert cfg.rules["delivery_timeout"].owner == "supply_chain_lead"


def test_invalid_alerts_yaml_names_file_key_and_fix(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "config" / "alerts.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "alerts.yaml"
    bad.write_text(text.replace("owner: pricing", "owner: pricing_team"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_alert_config(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert "rules.price_difference.owner" in msg and "'pricing_team'" in msg
    assert "use one of" in msg and "operations_lead" in msg

    bad.write_text(text.replace("severity: critical", "severity: loud", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.order_pulse\.severity.*'info', 'warning'"):
        load_alert_config(bad)

    bad.write_text(text.replace("cooldown_minutes: 120", "cooldown_mins: 120"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.order_pulse\.cooldown_mins: Extra inputs"):
        load_alert_config(bad)


def test_raise_alerts_records_rows_and_respects_the_cooldown(conn) -> None:
    cfg = load_alert_config()
    chart = Chart("timeout rate", ["11-18", "11-19"], {"广东省": [0.2, 0.3]}, threshold=0.15)
    ids = raise_alerts(
        conn,
        [
            Alert("order_pulse", "pdd silent for 95 min", {"minutes": 95}, "channel=pdd"),
            Alert("delivery_timeout", "广东省 late", {"rate": 0.3}, "region=广东省", chart=chart),
            # the same key twice in one batch: the first wins
            Alert("order_pulse", "pdd silent again", {"minutes": 96}, "channel=pdd"),
            Alert("stuck_orders", "stuck", {"share": 0.1}, "status=picking", severity="critical"),
        ],
        cfg,
        NOW,
    )
    assert len(ids) == 3
    rows = conn.execute(
        "select rule, severity, subject, facts, recipients, created_at, delivery, dedup_key, "
        "chart, robot_delivery from ops.alerts order by id"
    ).fetchall()
    assert [r[0] for r in rows] == ["order_pulse", "delivery_timeout", "stuck_orders"]
    pulse, late, stuck = rows
    assert pulse[1:4] == ("critical", "pdd silent for 95 min", {"minutes": 95})
    assert pulse[4] == ["ops-lead@orderpulse.example"] and pulse[5] == NOW
    assert pulse[6] == "pending" and pulse[9] == "pending"  # order_pulse is urgent: robot too
    assert late[4] == ["supply-chain@orderpulse.example"] and late[9] is None
    assert late[8]["series"] == {"广东省": [0.2, 0.3]} and late[8]["threshold"] == 0.15
    assert stuck[1] == "critical"  # the alert's own severity beats the rule's

    # within order_pulse's 120-minute cool-down: nothing; a new key still goes through
    again = raise_alerts(
        conn,
        [
            Alert("order_pulse", "pdd still silent", {}, "channel=pdd"),
            Alert("order_pulse", "jd silent", {}, "channel=jd"),
        ],
        cfg,
        NOW + timedelta(minutes=119),
    )
    assert len(again) == 1
    # after the cool-down the same key is raised again
    later = raise_alerts(
        conn,
        [Alert("order_pulse", "pdd silent", {}, "channel=pdd")],
        cfg,
        NOW + timedelta(minutes=121),
    )
    assert len(later) == 1
    assert conn.execute("select count(*) from ops.alerts").fetchone()[0] == 5


def test_raise_alerts_refuses_an_unknown_rule_and_writes_nothing(conn) -> None:
    with pytest.raises(KeyError, match="not in config/alerts.yaml"):
        raise_alerts(conn, [Alert("no_such_rule", "x", {}, "k")], now=NOW)
    assert raise_alerts(conn, [], now=NOW) == []
