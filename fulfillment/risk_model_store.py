"""The learned risk model in the warehouse: trained on the reviewers' decisions, stored
versioned in `ops.risk_models`, loaded by the scoring step.

Public entries: `reviewed_counts(conn)`, `train_from_warehouse(conn, rules, now)` (a
`RiskModel`, or `NotEnoughReviews` naming what is missing), `save_model(conn, trained, now)`
and `load_current_model(conn)` (the newest stored model, or None: the rules alone).

What production has to learn from is what the merchant found out: `ops.review_queue` rows
that risk held (`hold_reason` risk) with a person's `decision` `intercept` (bad) or `release`
(honest), and for the orders that shipped, the platforms' chargebacks and the audits of
`raw.risk_feedback` (`connectors.risk_feedback`; a chargeback or an audit verdict fraud /
coupon_abuse: bad, an audit verdict honest: honest). An order is bad when a reviewer
intercepted it, a chargeback came or an audit found it bad. A chargeback may still come
`model.label_window_days` after payment, so only orders paid before that window closed
(`now - label_window_days`) are trained on; the newer ones are unlabelled. The sandbox's
verdict labels never reach the warehouse. Training takes every paid order of
`intermediate.int_orders` paid from the first order with a verdict (a review or feedback, at
most `model.history_days` back) to the last one paid before the label window closed, computes
each order's features as the scoring step would have when it arrived
(`risk_store.load_inputs` day by day, the context capped at the day's end), fits on the
earlier part (every order, those without a verdict as honest, with
`model.fit_unreviewed_as_honest`; else the ones with a verdict only) and chooses the threshold
on the later part, where an order without a verdict counts as honest. Fewer than
`model.min_reviewed` orders with a verdict (from any source: a reviewer's decision, a
chargeback, an audit), or fewer than `model.min_each` bad or honest ones, or no verdict before
the label window closed: no model, the rules alone.
(`raw.risk_feedback` is read here directly, not through dbt: it feeds no model of the
warehouse, only this training.)

The artefact is the pickled `RiskModel` with its SHA-256 beside; `load_current_model` refuses
an artefact whose hash differs. Only the pipeline's role writes `ops` (BI roles cannot), and
only what this module pickled is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import sklearn

from fulfillment.frames import read_frame
from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.risk import assess
from fulfillment.risk_model import RiskModel, order_features, train
from fulfillment.risk_rules import RiskRules
from fulfillment.risk_store import ORDER_COLUMNS, load_inputs

__all__ = [
    "NotEnoughReviews",
    "ReviewCounts",
    "TrainedModel",
    "load_current_model",
    "reviewed_counts",
    "save_model",
    "train_from_warehouse",
]

MODEL_TABLE = """
create table if not exists ops.risk_models (
    version           text primary key,
    trained_at        timestamptz not null,
    threshold         float8 not null,
    window_start      timestamptz,
    window_end        timestamptz,
    orders            integer,
    reviewed          integer,
    intercepted       integer,
    released          integer,
    validation        jsonb,
    sklearn_version   text,
    artefact          bytea not null,
    artefact_sha256   text not null
)"""

# a person's decision on an order risk held (CS-escalation holds, and the releases the system
# makes when a ticket closes, say nothing about fraud)
_REVIEWED = """
select channel, platform_order_no, decision
from ops.review_queue
where decision in ('release', 'intercept')
    and hold_reason = 'risk'
    and coalesce(reviewer, '') <> 'system'
"""

# per order: what chargebacks and audits reported up to now (bad wins over an honest audit)
_FEEDBACK = """
select channel, platform_order_no,
    bool_or(kind = 'chargeback') as charged_back,
    bool_or(kind = 'audit' and verdict <> 'honest') as audit_bad,
    bool_or(kind = 'audit' and verdict = 'honest') as audit_honest
from raw.risk_feedback
where source_modified_at <= %(now)s
group by channel, platform_order_no
"""
# before the first pull of raw.risk_feedback: no feedback
_NO_FEEDBACK = """
select null::text as channel, null::text as platform_order_no, null::bool as charged_back,
    null::bool as audit_bad, null::bool as audit_honest
where false
"""


def _counts(feedback: str) -> str:
    """Per label source, the orders paid since `since` with a verdict: reviewers' decisions,
    chargebacks, audit verdicts; and the orders with any verdict, bad and honest (an order is
    bad when intercepted, charged back or audited bad; honest when only released or audited
    honest)."""
    return f"""
with reviewed as ({_REVIEWED}),

feedback as ({feedback}),

verdicts as (
    select channel, platform_order_no, r.decision,
        coalesce(f.charged_back, false) as charged_back,
        coalesce(f.audit_bad, false) as audit_bad,
        coalesce(f.audit_honest, false) as audit_honest
    from reviewed r
    full join feedback f using (channel, platform_order_no)
),

labelled as (
    select v.*, o.paid_at,
        coalesce(v.decision = 'intercept', false) or v.charged_back or v.audit_bad
            as is_bad
    from verdicts v
    join intermediate.int_orders o using (channel, platform_order_no)
    where o.paid_at >= %(since)s
)

select count(*) filter (where decision is not null),
       count(*) filter (where decision = 'intercept'),
       count(*) filter (where decision = 'release'),
       count(*) filter (where charged_back),
       count(*) filter (where audit_bad),
       count(*) filter (where audit_honest),
       count(*),
       count(*) filter (where is_bad),
       count(*) filter (where not is_bad),
       min(paid_at),
       max(paid_at)
from labelled
"""


def _day_orders(feedback: str) -> str:
    return f"""
with reviewed as ({_REVIEWED}),

feedback as ({feedback})

select {ORDER_COLUMNS}, o.content_hash, r.decision as review_decision,
    coalesce(f.charged_back, false) as charged_back,
    coalesce(f.audit_bad, false) as audit_bad,
    coalesce(f.audit_honest, false) as audit_honest
from intermediate.int_orders o
left join reviewed r using (channel, platform_order_no)
left join feedback f using (channel, platform_order_no)
where o.paid_at >= %(start)s and o.paid_at < %(end)s
"""


def _evidence_span(feedback: str) -> str:
    """The first and last payment of an order with a verdict, paid in [since, closes)."""
    return f"""
with reviewed as ({_REVIEWED}),

feedback as ({feedback}),

verdicts as (
    select channel, platform_order_no from reviewed
    union
    select channel, platform_order_no from feedback
)

select min(o.paid_at), max(o.paid_at)
from verdicts v
join intermediate.int_orders o using (channel, platform_order_no)
where o.paid_at >= %(since)s and o.paid_at < %(closes)s
"""


def _feedback_sql(conn: psycopg.Connection) -> str:
    exists = conn.execute("select to_regclass('raw.risk_feedback') is not null").fetchone()[0]
    return _FEEDBACK if exists else _NO_FEEDBACK


class NotEnoughReviews(Exception):  # noqa: N818 (reads as what happened)
    """Too few reviewed orders to train on: the rules alone keep deciding."""


@dataclass(frozen=True)
class ReviewCounts:
    """The verdicts the warehouse holds on orders paid within `model.history_days`, by source
    (a person's decision on a held order; a chargeback; an audit), and the orders with any
    verdict, bad or honest (one order may have several)."""

    reviewed: int
    intercepted: int
    released: int
    first_paid: datetime | None
    last_paid: datetime | None
    charged_back: int = 0
    audited_bad: int = 0
    audited_honest: int = 0
    with_verdict: int = 0
    bad: int = 0
    honest: int = 0

    def shortfall(self, rules: RiskRules) -> str | None:
        """Why these are too few to train on (None: enough). Every label source counts: the
        minimums apply to the orders with a verdict and to the bad and the honest ones."""
        m = rules.model
        if self.with_verdict >= m.min_reviewed and min(self.bad, self.honest) >= m.min_each:
            return None
        return (
            f"{self.reviewed} reviewed orders in ops.review_queue ({self.intercepted} "
            f"intercepted, {self.released} released), {self.charged_back} charged back and "
            f"{self.audited_bad + self.audited_honest} audited ({self.audited_bad} bad) in "
            f"raw.risk_feedback: {self.with_verdict} orders with a verdict ({self.bad} bad, "
            f"{self.honest} honest); training needs at least {m.min_reviewed} with "
            f"{m.min_each} bad and {m.min_each} honest (config/risk.yaml model.min_reviewed, "
            "model.min_each). Risk stays with the rules alone until reviewers decide more "
            "held orders (orderpulse review ORDER --release|--intercept) or more chargebacks "
            "and audits arrive (raw/risk_feedback)."
        )


@dataclass(frozen=True)
class TrainedModel:
    model: RiskModel
    orders: int  # the paid orders of the training window (reviewed or not)
    counts: ReviewCounts
    # what it trained on: the window, where the label window closed, and the verdicts by source
    labels: dict = field(default_factory=dict)


def reviewed_counts(conn: psycopg.Connection, rules: RiskRules, now: datetime) -> ReviewCounts:
    """The verdicts on orders paid within `model.history_days` before `now`: reviewers'
    decisions, and the chargebacks and audits reported by `now`."""
    ensure_ops_tables(conn)
    since = now - timedelta(days=rules.model.history_days)
    row = conn.execute(_counts(_feedback_sql(conn)), {"since": since, "now": now}).fetchone()
    n = [int(v) for v in row[:9]]
    return ReviewCounts(
        reviewed=n[0], intercepted=n[1], released=n[2], first_paid=row[9], last_paid=row[10],
        charged_back=n[3], audited_bad=n[4], audited_honest=n[5], with_verdict=n[6], bad=n[7],
        honest=n[8],
    )  # fmt: skip


def _day_features(
    conn: psycopg.Connection,
    rules: RiskRules,
    start: datetime,
    end: datetime,
    now: datetime,
    feedback: str,
) -> pd.DataFrame:
    """The features of the orders paid in [start, end), as scoring saw them then, with
    `paid_at`, `bad`, `labelled` and where the verdict came from beside."""
    with conn.transaction():
        params = {"start": start, "end": end, "now": now}
        orders = read_frame(conn, _day_orders(feedback), params)
        if orders.empty:
            return pd.DataFrame()
        orders, context, events = load_inputs(conn, rules, orders, upto=end)
    assessed = assess(orders, rules, context=context, events=events)
    features = order_features(orders, assessed, rules, context=context, events=events)
    keys = orders.set_index(["channel", "platform_order_no"])
    decision = keys["review_decision"].reindex(features.index)
    features["paid_at"] = pd.to_datetime(keys["paid_at"], utc=True).reindex(features.index)
    features["rules_hold"] = assessed["decision"].eq("review").to_numpy()
    said = keys[["charged_back", "audit_bad", "audit_honest"]].reindex(features.index)
    said = said.fillna(False).astype(bool)
    features["intercepted"] = decision.eq("intercept").to_numpy()
    features["charged_back"] = said["charged_back"].to_numpy()
    features["audit_bad"] = said["audit_bad"].to_numpy()
    features["bad"] = features["intercepted"] | features["charged_back"] | features["audit_bad"]
    features["labelled"] = (
        decision.isin(["intercept", "release"]).to_numpy() | said.any(axis=1).to_numpy()
    )
    return features


def train_from_warehouse(conn: psycopg.Connection, rules: RiskRules, now: datetime) -> TrainedModel:
    """Train on the reviewers' decisions (raises `NotEnoughReviews` with what is missing)."""
    counts = reviewed_counts(conn, rules, now)
    shortfall = counts.shortfall(rules)
    if shortfall:
        raise NotEnoughReviews(shortfall)
    # only orders whose label window closed (a chargeback may still come for the newer),
    # from the first with a verdict to the last: the orders after it are not decided yet
    # (awaiting allocation or a reviewer) and would count as honest in the validation slice
    closes = now - timedelta(days=rules.model.label_window_days)
    since = now - timedelta(days=rules.model.history_days)
    feedback = _feedback_sql(conn)
    first, last = conn.execute(
        _evidence_span(feedback), {"since": since, "closes": closes, "now": now}
    ).fetchone()
    if first is None:
        raise NotEnoughReviews(
            f"no reviewed, charged-back or audited order was paid between {since:%Y-%m-%d} "
            f"and {closes:%Y-%m-%d %H:%M} (the label window, model.label_window_days = "
            f"{rules.model.label_window_days:g}, is still open for the newer ones: a "
            "chargeback may still come); wait until it closes."
        )
    start = pd.Timestamp(first)
    end = pd.Timestamp(last) + pd.Timedelta(microseconds=1)
    bounds = [start, *pd.date_range(start.floor("D"), end, freq="D")[1:], end]
    days = [
        _day_features(conn, rules, a.to_pydatetime(), b.to_pydatetime(), now, feedback)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if a < b
    ]
    frame = pd.concat([d for d in days if not d.empty])
    frame = frame.sort_values("paid_at", kind="stable")
    try:
        model = train(
            frame,
            frame["bad"].to_numpy(bool),
            frame["rules_hold"].to_numpy(bool),
            frame["paid_at"].reset_index(drop=True),
            rules.model,
            # every order, the unreviewed as honest; or the reviewed only
            labelled=None
            if rules.model.fit_unreviewed_as_honest
            else frame["labelled"].to_numpy(bool),
        )
    except ValueError as err:
        raise NotEnoughReviews(
            f"{err}: the reviewed orders paid before the validation slice (the last "
            f"{rules.model.calibration_share:.0%} of {start:%Y-%m-%d}..{end:%Y-%m-%d}) must "
            "include intercepted and released ones; wait for more reviews."
        ) from None
    return TrainedModel(
        model=model, orders=len(frame), counts=counts, labels=_labels(frame, rules, closes)
    )


def _labels(frame: pd.DataFrame, rules: RiskRules, closes: datetime) -> dict:
    """What the model trained on, for the record: the orders, the bad ones by the source of
    their verdict (one order may have several), those with any verdict."""
    return {
        "orders_paid": [frame["paid_at"].min().isoformat(), frame["paid_at"].max().isoformat()],
        "label_window_closed_at": pd.Timestamp(closes).isoformat(),
        "label_window_days": rules.model.label_window_days,
        "orders": len(frame),
        "with_a_verdict": int(frame["labelled"].sum()),
        "bad": int(frame["bad"].sum()),
        "bad_by_source": {
            "reviewer_intercept": int(frame["intercepted"].sum()),
            "chargeback": int(frame["charged_back"].sum()),
            "audit": int(frame["audit_bad"].sum()),
        },
        "fitted_without_a_verdict_as_honest": rules.model.fit_unreviewed_as_honest,
    }


def save_model(conn: psycopg.Connection, trained: TrainedModel, now: datetime) -> str:
    """Store the model (a re-train on the same data keeps its version, newly dated)."""
    model, counts = trained.model, trained.counts
    artefact = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    with conn.transaction():
        conn.execute(MODEL_TABLE)
        conn.execute(
            """
            insert into ops.risk_models (version, trained_at, threshold, window_start,
                window_end, orders, reviewed, intercepted, released, validation,
                sklearn_version, artefact, artefact_sha256)
            values (%(version)s, %(now)s, %(threshold)s, %(start)s, %(end)s, %(orders)s,
                %(reviewed)s, %(intercepted)s, %(released)s, %(validation)s::jsonb,
                %(sklearn)s, %(artefact)s, %(sha)s)
            on conflict (version) do update set trained_at = excluded.trained_at
            """,
            {
                "version": model.version,
                "now": now,
                "threshold": model.threshold,
                "start": model.window[0],
                "end": model.window[1],
                "orders": trained.orders,
                "reviewed": counts.reviewed,
                "intercepted": counts.intercepted,
                "released": counts.released,
                "validation": json.dumps(_plain(model.validation)),
                "sklearn": sklearn.__version__,
                "artefact": artefact,
                "sha": hashlib.sha256(artefact).hexdigest(),
            },
        )
    return model.version


def load_current_model(conn: psycopg.Connection) -> RiskModel | None:
    """The newest stored model, or None when none was trained (the rules alone)."""
    exists = conn.execute("select to_regclass('ops.risk_models') is not null").fetchone()[0]
    if not exists:
        return None
    row = conn.execute(
        "select version, artefact, artefact_sha256 from ops.risk_models "
        "order by trained_at desc, version limit 1"
    ).fetchone()
    if row is None:
        return None
    version, artefact, sha = row
    artefact = bytes(artefact)
    if hashlib.sha256(artefact).hexdigest() != sha:
        raise ValueError(
            f"ops.risk_models {version}: the artefact's SHA-256 differs from the one stored "
            "with it; retrain (materialise ops/risk_model) or delete the row"
        )
    model = pickle.loads(artefact)  # noqa: S301 (our own artefact, hash checked above)
    if not isinstance(model, RiskModel):
        raise ValueError(f"ops.risk_models {version}: the artefact is no RiskModel")
    return model


def _plain(figures: dict) -> dict:
    """JSON-ready figures (numpy numbers to Python, NaN to None)."""
    out = {}
    for k, v in figures.items():
        v = v.item() if isinstance(v, np.generic) else v
        out[k] = None if isinstance(v, float) and np.isnan(v) else v
    return out
