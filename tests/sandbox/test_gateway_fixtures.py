"""The payload fixtures dbt's staging models are written against stay what the gateways serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.gateways import GATEWAYS
from sandbox.gateways.fixtures import CREDENTIALS, fixture_order, render_fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


@pytest.mark.parametrize("channel", list(GATEWAYS))
def test_fixture_file_matches_the_gateway_rendering(channel: str) -> None:
    on_disk = json.loads((FIXTURES / f"{channel}.json").read_text(encoding="utf-8"))
    stale = f"tests/fixtures/payloads/{channel}.json is stale: rerun sandbox.gateways.fixtures"
    assert on_disk == render_fixture(channel), stale


@pytest.mark.parametrize("channel", list(GATEWAYS))
def test_fixture_carries_the_order_number_and_no_clear_receiver(channel: str) -> None:
    text = (FIXTURES / f"{channel}.json").read_text(encoding="utf-8")
    order = fixture_order(channel)
    assert order.platform_order_no in text
    assert order.receiver.name not in text and order.receiver.phone not in text


@pytest.mark.parametrize("channel", list(GATEWAYS))
def test_a_marketplace_without_fixed_credentials_still_renders(
    channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a new marketplace needs no CREDENTIALS entry: `fixture-<field>` credentials, stable
    monkeypatch.delitem(CREDENTIALS, channel)
    first = render_fixture(channel)
    assert first == render_fixture(channel)
    assert fixture_order(channel).platform_order_no in json.dumps(first, ensure_ascii=False)
