"""The `ops/risk_assessments` asset materialises against a real PostgreSQL, reports its counts
and examples, and sits between the two dbt ops in the asset graph; `ops/risk_model` trains on
the reviewers' decisions (or refuses, saying why, with too few), and the risk asset scores
with the stored model when there is one and with the rules alone before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from orchestration.fulfillment.risk import risk_assessments
from orchestration.resources import WarehouseResource
from tests.fulfillment.test_risk_store import _AWAITING, _EVENTS, _INT_ORDERS, _insert_order


def test_the_asset_assesses_queues_and_reports(fresh_db) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        _insert_order(conn, "1", 1, created_at=now - timedelta(hours=1))
        _insert_order(conn, "2", 2, country="US", created_at=now - timedelta(hours=1))
        conn.commit()
    resources = {"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    result = dg.materialize([risk_assessments], resources=resources)
    assert result.success
    [mat] = result.asset_materializations_for_node("ops__risk_assessments")
    meta = mat.metadata
    assert meta["dagster/row_count"].value == 2
    assert meta["assessed_this_run"].value == 2
    assert meta["queued_this_run"].value == 1
    assert meta["signals_this_run"].value == {"customs_incomplete": 1}
    assert meta["review_queue"].value == {"pending": 1, "released": 0, "intercepted": 0}
    assert "customs_incomplete" in meta["examples"].value
    again = dg.materialize([risk_assessments], resources=resources)
    [mat] = again.asset_materializations_for_node("ops__risk_assessments")
    assert mat.metadata["assessed_this_run"].value == 0


def test_the_asset_sits_between_the_dbt_ops() -> None:
    from orchestration.definitions import defs

    graph = defs.get_repository_def().asset_graph
    key = dg.AssetKey(["ops", "risk_assessments"])
    node = graph.get(key)
    assert node.group_name == "fulfillment"
    parents = {k.to_user_string() for k in node.parent_keys}
    assert {"intermediate/int_orders_awaiting_allocation", "intermediate/int_orders"} <= parents
    children = {k.to_user_string() for k in node.child_keys}
    assert "staging/stg_ops__order_decisions" in children


# ---------------------------------------------------------------- the learned model


def _rules_file(tmp_path, **model: object) -> str:
    """config/risk.yaml with small-data model settings (the shipped minimums are for a shop)."""
    import yaml

    from kernel.config import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "risk.yaml").read_text(encoding="utf-8"))
    data["model"].update(model)
    path = tmp_path / "risk.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def _history(conn: psycopg.Connection, now: datetime, days: int = 4, per_day: int = 40) -> None:
    """Past orders (not awaiting allocation) that fire no rule: every fourth is a card
    tester's (9.90 yuan, paid the second it was placed), intercepted by a reviewer; half the
    others were held and released, the rest never reviewed. Same time of day for all."""
    for d in range(days):
        day = (now - timedelta(days=days - d)).replace(hour=6, minute=0, second=0, microsecond=0)
        for i in range(per_day):
            no, bad = f"OLD{d}-{i}", i % 4 == 0
            paid = day + timedelta(seconds=i)
            _insert_order(
                conn, no, 20 + i, buyer_id=f"H{d}-{i}", buyer_ip=f"10.{d}.1.{i}",
                receiver_phone=f"139{d:02d}{i:06d}", receiver_address=f"幸福路{d}-{i}号",
                goods_value=9.9 if bad else 200, discount_amount=0, shop_discount=0,
                created_at=paid - timedelta(seconds=0 if bad else 300), paid_at=paid,
            )  # fmt: skip
            if bad or i % 2:
                conn.execute(
                    "insert into ops.review_queue (channel, platform_order_no, score, "
                    "hold_until, decision, reviewer) values ('tmall', %s, 85, %s, %s, 'li')",
                    [no, paid + timedelta(hours=72), "intercept" if bad else "release"],
                )


def _candidates(conn: psycopg.Connection, now: datetime) -> None:
    """Two orders awaiting allocation, paid at the history's time of day: a card tester's
    and an honest one, both quiet for the rules."""
    paid = (now - timedelta(days=1)).replace(hour=6, minute=0, second=50, microsecond=0)
    common = {"discount_amount": 0, "shop_discount": 0, "paid_at": paid}
    _insert_order(conn, "T1", 1, goods_value=9.9, created_at=paid, **common)
    _insert_order(
        conn, "H1", 2, goods_value=200, created_at=paid - timedelta(seconds=300), **common
    )


def _prepared(fresh_db, now: datetime, *, history: bool) -> None:
    from fulfillment.ops_schema import ensure_ops_tables

    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        ensure_ops_tables(conn)
        if history:
            _history(conn, now)
        else:  # three reviewed orders only
            _history(conn, now, days=1, per_day=4)
        _candidates(conn, now)
        conn.commit()


def _meta(result: dg.ExecuteInProcessResult, node: str) -> dict:
    [mat] = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


@pytest.mark.slow  # ~6 s: two runs of the risk asset, a training from the warehouse
def test_risk_uses_the_retrained_model_when_present_and_the_rules_alone_before(
    fresh_db, tmp_path
) -> None:
    from orchestration.fulfillment.risk_model import risk_model

    now = datetime.now(UTC)
    _prepared(fresh_db, now, history=True)
    rules = _rules_file(
        tmp_path, min_reviewed=50, min_each=10, max_iter=30, min_samples_leaf=5,
        honest_hold_target=0.0, label_window_days=0,
    )  # fmt: skip
    resources = {"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    run_config = {"ops": {"ops__risk_assessments": {"config": {"rules_path": rules}}}}

    # no model yet: the rules alone, which hold neither candidate
    first = dg.materialize([risk_assessments], resources=resources, run_config=run_config)
    meta = _meta(first, "ops__risk_assessments")
    assert meta["model_version"].startswith("none: rules alone")
    assert meta["assessments_by_model"] == {"rules alone": 2}
    with psycopg.connect(fresh_db.url()) as conn:
        queued = conn.execute("select count(*) from ops.review_queue where decision is null")
        assert queued.fetchone()[0] == 0

    trained = dg.materialize(
        [risk_model],
        resources=resources,
        run_config={"ops": {"ops__risk_model": {"config": {"rules_path": rules}}}},
    )
    meta = _meta(trained, "ops__risk_model")
    assert meta["trained"] is True and meta["model_version"].startswith("rm-")
    assert meta["reviewed_orders"] == {"reviewed": 120, "intercepted": 40, "released": 80}
    # every order paid from the first reviewed one to the last, reviewed or not; not the
    # candidates paid after it
    assert meta["training_orders"] == 160
    version = meta["model_version"]

    # with the model: the card tester is held by it, the honest order passes; both rows say
    # which model scored them
    second = dg.materialize([risk_assessments], resources=resources, run_config=run_config)
    meta = _meta(second, "ops__risk_assessments")
    assert meta["model_version"] == version
    assert meta["held_by_model_this_run"] == 1
    assert meta["assessed_this_run"] == 2  # a new model assesses again
    with psycopg.connect(fresh_db.url()) as conn:
        rows = conn.execute(
            "select platform_order_no, score, rule_score, model_version, model_probability, "
            "signals from ops.risk_assessments order by 1"
        ).fetchall()
        queue = conn.execute(
            "select platform_order_no from ops.review_queue where decision is null"
        ).fetchall()
    by_no = {r[0]: r[1:] for r in rows}
    assert {r[3] for r in rows} == {version}
    score, rule_score, _, probability, signals = by_no["T1"]
    assert rule_score == 0 and score > 80
    assert signals["learned_score"]["model_version"] == version
    assert signals["learned_score"]["probability"] == pytest.approx(probability)
    assert by_no["H1"][3] < probability and "learned_score" not in by_no["H1"][4]
    assert queue == [("T1",)]

    # the demo's line: the queue against the sandbox's verdicts, and who scored
    from rich.console import Console

    from orderpulse.demo import print_risk_vs_truth

    console = Console(record=True, width=400)
    truth = {"orders": [{"channel": "tmall", "platform_order_no": "T1", "labels": ["fraud"]}]}
    with psycopg.connect(fresh_db.url()) as conn:
        print_risk_vs_truth(console, conn, truth)
    line = console.export_text()
    assert "2 orders assessed, 1 bad; review queue recall 100.0%, honest orders held 0.00%" in line
    assert f"precision 100.0% (1 held; scored by {version})" in line
    # beside it, what the rules alone hold (nothing: T1 is the model's)
    assert "rules alone: recall 0.0%, honest orders held 0.00%, precision n/a (0 held)" in line
    assert "rules + model: the line above (1 more)" in line


def test_retrain_refuses_with_too_few_reviewed_orders(fresh_db, tmp_path) -> None:
    from orchestration.fulfillment.risk_model import risk_model

    now = datetime.now(UTC)
    _prepared(fresh_db, now, history=False)
    resources = {"warehouse": WarehouseResource(pg_url=fresh_db.url())}
    result = dg.materialize([risk_model], resources=resources)
    assert result.success  # the pipeline goes on with the rules
    meta = _meta(result, "ops__risk_model")
    assert meta["trained"] is False
    assert meta["reviewed_orders"] == {"reviewed": 3, "intercepted": 1, "released": 2}
    assert meta["reason"].startswith("3 reviewed orders in ops.review_queue (1 intercepted, 2")
    assert "model.min_reviewed" in meta["reason"] and "rules alone" in meta["reason"]
    assert meta["model_in_use"] == "none: rules alone"
    with psycopg.connect(fresh_db.url()) as conn:
        stored = conn.execute("select to_regclass('ops.risk_models')").fetchone()[0]
    assert stored is None
    # and the risk asset scores with the rules alone
    scored = dg.materialize([risk_assessments], resources=resources)
    assert _meta(scored, "ops__risk_assessments")["assessments_by_model"] == {"rules alone": 2}

    # a stored model whose artefact does not match its hash is not used, and says so
    from fulfillment.risk_model_store import MODEL_TABLE

    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(MODEL_TABLE)
        conn.execute(
            "insert into ops.risk_models (version, trained_at, threshold, artefact, "
            "artefact_sha256) values ('rm-000000000000', now(), 0.5, 'x', 'not-its-hash')"
        )
        conn.commit()
    scored = dg.materialize([risk_assessments], resources=resources)
    meta = _meta(scored, "ops__risk_assessments")
    assert meta["model_version"].startswith("none: rules alone (stored model unusable: ")
    assert "rm-000000000000" in meta["model_version"] and "SHA-256" in meta["model_version"]
