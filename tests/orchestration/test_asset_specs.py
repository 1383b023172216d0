"""What the Dagster UI shows of every asset: a description, owners, kinds and a code version;
jobs that say what they do; a freshness policy on every channel asset from its cadence."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from orchestration.ingest.freshness import cron_longest_gap


def _specs() -> list[dg.AssetSpec]:
    from orchestration.definitions import defs

    return [
        spec
        for assets_def in defs.assets or []
        if isinstance(assets_def, dg.AssetsDefinition)
        for spec in assets_def.specs
    ]


def test_every_asset_has_description_owners_kinds_and_code_version() -> None:
    specs = _specs()
    assert len(specs) > 50  # ingest, every dbt model, decisions, reporting
    missing = {
        spec.key.to_user_string(): [
            what
            for what, value in (
                ("description", spec.description),
                ("owners", spec.owners),
                ("kinds", spec.kinds),
                ("code_version", spec.code_version),
            )
            if not value
        ]
        for spec in specs
    }
    assert not {k: v for k, v in missing.items() if v}


def test_every_job_says_what_it_does() -> None:
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    jobs = [j for j in repo.get_all_jobs() if not j.name.startswith("__")]
    assert jobs
    for job in jobs:
        assert job.description and len(job.description) > 20, job.name
        assert job.name not in {"job", "default", "run"}, job.name


def test_every_channel_asset_is_fresh_within_its_schedule() -> None:
    from connectors.channels_config import load_channels
    from orchestration.ingest.assets import orders_asset_key

    by_key = {spec.key: spec for spec in _specs()}
    for channel, cfg in load_channels().channels.items():
        policy = by_key[orders_asset_key(channel)].freshness_policy
        assert type(policy).__name__ == "TimeWindowFreshnessPolicy", channel
        cadence = (
            timedelta(days=1)
            if cfg.kind in ("sftp", "file_drop")
            else cron_longest_gap(cfg.schedule or "")
        )
        # fail after three missed pulls, warn after two (every 10 min: 30 and 20 min)
        assert policy.fail_window.to_timedelta() == 3 * cadence, channel
        assert policy.warn_window.to_timedelta() == 2 * cadence, channel


@pytest.mark.parametrize(
    ("cron", "gap"),
    [
        ("*/10 * * * *", timedelta(minutes=10)),
        ("*/7 * * * *", timedelta(minutes=7)),  # 56 -> next hour's 0 is only 4 min
        ("5,35 * * * *", timedelta(minutes=30)),
        ("0 8-20/4 * * *", timedelta(hours=12)),  # 8,12,16,20 then 8 next morning
        ("30 3 * * 1-5", timedelta(days=3)),  # Friday to Monday
        ("0 0 1 * *", timedelta(days=31)),
        ("0 9 1 * 1", timedelta(days=7)),  # either day field: every Monday and the 1st
        ("0 0 29 2 *", timedelta(days=4 * 365 + 1)),
    ],
)
def test_cron_longest_gap(cron: str, gap: timedelta) -> None:
    assert cron_longest_gap(cron) == gap


def test_cron_longest_gap_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="5-field"):
        cron_longest_gap("@hourly")
    with pytest.raises(ValueError, match="out of range"):
        cron_longest_gap("61 * * * *")
