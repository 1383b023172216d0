"""What the learned risk model trains on: in the warehouse, reviewers' decisions, chargebacks
and audit verdicts, on orders whose label window has closed only; on hand-built frames,
verdicts on orders the rules let pass teach the model what the rules miss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from connectors.risk_feedback import DDL as FEEDBACK_DDL
from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.risk_model import FEATURES, train
from fulfillment.risk_model_store import NotEnoughReviews, reviewed_counts, train_from_warehouse
from fulfillment.risk_rules import LearnedScore, load_risk_rules
from tests.fulfillment.test_risk_store import _EVENTS, _INT_ORDERS, _insert_order

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def _rules(**model: object):  # noqa: ANN202
    rules = load_risk_rules()
    settings = {"min_reviewed": 2, "min_each": 1, "max_iter": 20, "min_samples_leaf": 3}
    return rules.model_copy(update={"model": rules.model.model_copy(update={**settings, **model})})


def _world(conn: psycopg.Connection) -> None:
    """12 days of orders, 12 a day: every fourth a card tester's (9.90 yuan, paid at once).
    A reviewer intercepted one tester and released one honest order a day; one passed tester
    a day got a chargeback 2 days after payment, the others none; the day's last order was
    audited honest a day after payment. One more chargeback is reported after NOW."""
    conn.execute("create schema if not exists intermediate")
    conn.execute("create schema if not exists staging")
    conn.execute(_INT_ORDERS)
    conn.execute(_EVENTS)
    conn.execute(FEEDBACK_DDL)
    ensure_ops_tables(conn)
    feedback = [("CBLATE", "OLD02-08", "chargeback", "fraud", NOW + timedelta(hours=1))]
    for d in range(12):
        day = (NOW - timedelta(days=12 - d)).replace(hour=6)
        for i in range(12):
            no, bad = f"OLD{d:02d}-{i:02d}", i % 4 == 0
            paid = day + timedelta(minutes=i)
            _insert_order(
                conn, no, 20 + i, buyer_id=f"H{d}-{i}", buyer_ip=f"10.{d}.1.{i}",
                receiver_phone=f"139{d:02d}{i:06d}", receiver_address=f"幸福路{d}-{i}号",
                goods_value=9.9 if bad else 200, discount_amount=0, shop_discount=0,
                created_at=paid - timedelta(seconds=0 if bad else 300), paid_at=paid,
            )  # fmt: skip
            if i in (0, 1):
                conn.execute(
                    "insert into ops.review_queue (channel, platform_order_no, score, "
                    "hold_until, decision, reviewer) values ('tmall', %s, 85, %s, %s, 'li')",
                    [no, paid + timedelta(hours=72), "intercept" if bad else "release"],
                )
            elif bad and i == 4:
                feedback.append((f"CB{no}", no, "chargeback", "fraud", paid + timedelta(days=2)))
            elif i == 11:
                feedback.append((f"AU{no}", no, "audit", "honest", paid + timedelta(days=1)))
    for fid, no, kind, verdict, at in feedback:
        conn.execute(
            "insert into raw.risk_feedback (feedback_id, channel, platform_order_no, kind, "
            "verdict, source_modified_at, payload, content_hash) values "
            "(%s, 'tmall', %s, %s, %s, %s, '{}', '')",
            [fid, no, kind, verdict, at],
        )
    conn.commit()


@pytest.fixture()
def conn(fresh_db):
    with psycopg.connect(fresh_db.url()) as c:
        yield c


@pytest.mark.slow  # ~6 s on a busy machine: features of 5 days of orders from the warehouse
def test_training_takes_only_orders_whose_label_window_closed(conn) -> None:
    _world(conn)
    trained = train_from_warehouse(conn, _rules(label_window_days=7), NOW)
    labels = trained.labels
    closes = NOW - timedelta(days=7)
    # the orders paid in the last 7 days are not trained on, whatever their verdict
    assert pd.Timestamp(labels["orders_paid"][1]) < closes
    assert labels["label_window_closed_at"] == closes.isoformat()
    closed_days = 5  # days 0..4 (paid at 06:00 of NOW - 12 .. NOW - 8 days)
    assert trained.orders == labels["orders"] == 12 * closed_days
    # bad: intercepted by a reviewer or charged back (the audits said honest); the chargeback
    # reported after NOW is not known yet
    assert labels["bad_by_source"] == {
        "reviewer_intercept": closed_days, "chargeback": closed_days, "audit": 0,
    }  # fmt: skip
    assert labels["bad"] == 2 * closed_days
    assert labels["with_a_verdict"] == 4 * closed_days  # review x2, chargeback, audit

    # a label window longer than the history leaves nothing to train on, and says so
    with pytest.raises(NotEnoughReviews, match="label window"):
        train_from_warehouse(conn, _rules(label_window_days=13), NOW)


def test_the_minimum_counts_reviews_chargebacks_and_audits(conn) -> None:
    _world(conn)
    counts = reviewed_counts(conn, _rules(), NOW)
    # 12 days: a reviewer's intercept and release each; a chargeback 2 days and an honest
    # audit 1 day after payment, known by NOW for the first 10 and 11 days
    assert (counts.reviewed, counts.intercepted, counts.released) == (24, 12, 12)
    assert (counts.charged_back, counts.audited_bad, counts.audited_honest) == (10, 0, 11)
    assert (counts.with_verdict, counts.bad, counts.honest) == (45, 22, 23)
    # the reviews alone (24, 12 each) are too few for 40 with 20 bad and 20 honest; with the
    # chargebacks and audits there are enough
    assert counts.shortfall(_rules(min_reviewed=40, min_each=20)) is None
    # one more than there is of each: refused, naming every source
    reason = counts.shortfall(_rules(min_reviewed=46, min_each=20))
    assert reason is not None and "10 charged back and 11 audited (0 bad)" in reason
    assert "45 orders with a verdict (22 bad, 23 honest)" in reason
    assert counts.shortfall(_rules(min_reviewed=40, min_each=23)) is not None
    # before the first pull of raw.risk_feedback: the reviews alone
    conn.execute("drop table raw.risk_feedback")
    alone = reviewed_counts(conn, _rules(), NOW)
    assert (alone.with_verdict, alone.bad, alone.honest) == (24, 12, 12)
    assert alone.shortfall(_rules(min_reviewed=40, min_each=20)) is not None


def _frames(n: int = 4000, seed: int = 5) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Hand-built features: loud bad orders the rules hold (high rule score) and quiet bad
    orders the rules pass, told apart only by many buyers on one device."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=list(FEATURES))
    kind = rng.choice(["honest", "loud", "quiet"], size=n, p=[0.94, 0.03, 0.03])
    x.loc[kind == "loud", "rule_score"] += 5
    x.loc[kind == "quiet", "buyers_on_device"] += 4
    return x, {"loud": kind == "loud", "quiet": kind == "quiet"}


def test_verdicts_on_passed_orders_teach_the_model_what_the_rules_miss() -> None:
    x, kind = _frames()
    bad = kind["loud"] | kind["quiet"]
    rules_hold = kind["loud"]  # the rules hold every loud one and no quiet one
    times = pd.Series(
        pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(len(x)), "min")
    )
    settings = LearnedScore(max_iter=30, honest_hold_target=0.01)
    # reviewers alone: a verdict only where the rules held, every passed order taken as honest
    reviewed_only = train(x, bad & rules_hold, rules_hold, times, settings)
    # with chargebacks on 60 % of the passed bad orders (the rest still taken as honest)
    charged = kind["quiet"] & (np.random.default_rng(1).random(len(x)) < 0.6)
    with_feedback = train(x, (bad & rules_hold) | charged, rules_hold, times, settings)

    fresh, fresh_kind = _frames(seed=6)
    quiet = fresh_kind["quiet"]
    none = np.zeros(len(fresh), bool)
    caught_before = reviewed_only.hold(fresh, none)[quiet].mean()
    caught_after = with_feedback.hold(fresh, none)[quiet].mean()
    assert caught_before < 0.1 and caught_after > 0.5
    p_before = reviewed_only.probability(fresh)[quiet].mean()
    assert with_feedback.probability(fresh)[quiet].mean() > p_before + 0.3
    # and it holds no more honest orders than its target allows
    honest = ~(fresh_kind["loud"] | quiet)
    assert with_feedback.hold(fresh, none)[honest].mean() <= 0.02
