"""Incident recall: an incident counts as caught only by an alert of its rule that names its
subject; alerts nothing explains are false alarms (reports are not detections)."""

from __future__ import annotations

from quality.incident_scoring import score_incidents

INCIDENTS = [
    {"kind": "channel_silent", "channel": "pdd", "start": "t0", "end": "t1"},
    {"kind": "price_difference", "sku": "SKU-0007", "channel": "jd", "start": "t0", "end": "t1"},
    {"kind": "region_late_deliveries", "region": "广东省", "start": "t0", "end": "t1"},
]


def test_caught_only_by_the_right_rule_naming_the_subject():
    alerts = [
        {"rule": "order_pulse", "dedup_key": "channel=pdd", "subject": "pdd silent", "facts": {}},
        # right subject, wrong rule: does not catch the price incident
        {"rule": "inventory_oversold", "dedup_key": "sku=SKU-0007", "subject": "", "facts": {}},
        # right rule, another region
        {"rule": "delivery_timeout", "dedup_key": "region=浙江省", "subject": "", "facts": {}},
        {"rule": "daily_health_digest", "dedup_key": "day=2026-12-01", "subject": "", "facts": {}},
    ]
    score = score_incidents(INCIDENTS, alerts)
    assert score.kinds["channel_silent"].caught == 1
    assert score.kinds["price_difference"].caught == 0
    assert score.kinds["region_late_deliveries"].missed == [INCIDENTS[2]]
    assert (score.caught, score.incidents) == (1, 3)
    assert [a["rule"] for a in score.false_alarms] == ["inventory_oversold", "delivery_timeout"]


def test_subject_found_in_the_facts_and_a_calm_world_has_no_incidents():
    alerts = [{"rule": "delivery_timeout", "dedup_key": "x", "subject": "late",
               "facts": {"region": "广东省", "days": 3}}]  # fmt: skip
    assert score_incidents(INCIDENTS[2:], alerts).recall == 1.0
    calm = score_incidents([], alerts)
    assert calm.recall is None and len(calm.false_alarms) == 1
