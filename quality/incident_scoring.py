"""Scoring the watchers against a truth they did not write: which incidents listed by the
sandbox's truth (`"incidents"`, DESIGN.md contract) produced an alert of the rule that should
catch them, and which alerts match no incident (false alarms).

An incident is caught when an alert of its rule names the incident's subject (its order, SKU,
region, warehouse, status or channel: the most specific one it has) in the alert's dedup key,
subject or facts. Plain functions over the truth document and `ops.alerts` rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# which alert rule (config/alerts.yaml) should catch each kind of incident
RULE_OF_KIND: dict[str, str] = {
    "channel_silent": "order_pulse",
    "stock_sync_stale": "routing_circuit_breaker",
    "region_late_deliveries": "delivery_timeout",
    "price_difference": "price_difference",
    "oversold": "inventory_oversold",
    "stuck_orders": "stuck_orders",
    "return_interception_failed": "return_interception",
    "cs_escalation": "cs_escalation",
    "stock_diff": "stock_mismatch",
}
# the incident's subject, most specific first
SUBJECT_KEYS = ("platform_order_no", "sku", "region", "warehouse", "status", "channel")
# rules that report rather than detect: never false alarms
NOT_DETECTIONS = frozenset({"daily_health_digest", "monthly_reconciliation", "run_failure"})


@dataclass
class KindScore:
    kind: str
    rule: str
    incidents: int = 0
    caught: int = 0
    missed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.caught / self.incidents if self.incidents else None


@dataclass
class IncidentScore:
    kinds: dict[str, KindScore]
    false_alarms: list[dict[str, Any]]

    @property
    def incidents(self) -> int:
        return sum(k.incidents for k in self.kinds.values())

    @property
    def caught(self) -> int:
        return sum(k.caught for k in self.kinds.values())

    @property
    def recall(self) -> float | None:
        return self.caught / self.incidents if self.incidents else None


def subject_of(incident: Mapping[str, Any]) -> str | None:
    for key in SUBJECT_KEYS:
        if incident.get(key):
            return str(incident[key])
    return None


def _text(alert: Mapping[str, Any]) -> str:
    facts = alert.get("facts")
    if not isinstance(facts, str):
        facts = json.dumps(facts, ensure_ascii=False, default=str)
    return " ".join(str(alert.get(k) or "") for k in ("dedup_key", "subject")) + " " + facts


def _names(alert: Mapping[str, Any], subject: str) -> bool:
    return subject in _text(alert)


def score_incidents(
    incidents: Iterable[Mapping[str, Any]], alerts: Iterable[Mapping[str, Any]]
) -> IncidentScore:
    """Recall per incident kind and the alerts no incident explains."""
    alerts = [a for a in alerts if a.get("rule") not in NOT_DETECTIONS]
    kinds: dict[str, KindScore] = {}
    explained: set[int] = set()
    for incident in incidents:
        kind = str(incident.get("kind"))
        rule = RULE_OF_KIND.get(kind, kind)
        score = kinds.setdefault(kind, KindScore(kind, rule))
        score.incidents += 1
        subject = subject_of(incident)
        matches = [
            i
            for i, a in enumerate(alerts)
            if a.get("rule") == rule and (subject is None or _names(a, subject))
        ]
        if matches:
            score.caught += 1
            explained.update(matches)
        else:
            score.missed.append(dict(incident))
    false_alarms = [dict(a) for i, a in enumerate(alerts) if i not in explained]
    return IncidentScore(kinds, false_alarms)
