"""Every platform's stock client against the sandbox's gateway for it, over real HTTP: the stock
read back is what the gateway holds (several pages), a freeze changes the units on sale, a
pause and a lift reach the platform; rate limits, 5xx answers and an expired token are
retried as for the order calls; an unknown SKU or a wrong secret fails clearly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.http import IngestError, RetryPolicy, make_http_client
from connectors.platform_stock import build_stock_client
from sandbox.faults import FaultConfig
from sandbox.gateways import GATEWAYS, Gateway
from sandbox.model import MARKETPLACES

FAST = RetryPolicy(attempts=8, initial_wait=0.01, max_wait=0.05, jitter=0.01, max_hint=0.05)
SKUS = [f"SKU{i:05d}" for i in range(130)]  # more than one page everywhere (pages of 100 / 50)
ON_HAND = {s: 40 + i % 7 for i, s in enumerate(SKUS)}
LOCKED = {s: i % 3 for i, s in enumerate(SKUS)}
DRIFT = {"SKU00007": 6, "SKU00100": -2}


def _gateway(channel: str, faults: FaultConfig | None = None) -> Gateway:
    gateway = GATEWAYS[channel](faults=faults)
    gateway.stock.load(ON_HAND, LOCKED, DRIFT)
    return gateway


def _stock_client(gateway: Gateway, base_url: str, http):  # noqa: ANN001, ANN202
    return build_stock_client(gateway.channel, {**gateway.credentials, "base_url": base_url}, http)


def _expected_sellable(sku: str, withheld: int) -> int:
    return ON_HAND[sku] + DRIFT.get(sku, 0) - withheld


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_read_freeze_pause_and_lift(channel: str, serve: Callable[[object], str]) -> None:
    gateway = _gateway(channel)
    with make_http_client(timeout=5, policy=FAST) as http:
        client = _stock_client(gateway, serve(gateway.app), http)
        rows = {r["sku"]: r for r in client.read_stock()}
        assert sorted(rows) == SKUS
        assert rows["SKU00007"] == {
            "sku": "SKU00007",
            "sellable": _expected_sellable("SKU00007", LOCKED["SKU00007"]),
            "withheld": LOCKED["SKU00007"],
            "paused": False,
        }
        assert all(r["sellable"] == _expected_sellable(s, LOCKED[s]) for s, r in rows.items())

        frozen = {s: 5 for s in SKUS[:60]}  # two write batches
        assert client.set_withheld(frozen) == 2
        assert client.set_paused(["SKU00003", "SKU00120"], True) == 1
        rows = {r["sku"]: r for r in client.read_stock()}
        assert rows["SKU00007"]["sellable"] == _expected_sellable("SKU00007", 5)
        assert (
            rows["SKU00059"]["withheld"] == 5 and rows["SKU00060"]["withheld"] == LOCKED["SKU00060"]
        )
        assert {s for s, r in rows.items() if r["paused"]} == {"SKU00003", "SKU00120"}
        # the platform itself holds the new numbers
        assert {r.sku for r in gateway.stock.rows(SKUS) if r.paused} == {"SKU00003", "SKU00120"}

        client.set_paused(["SKU00003"], False)
        client.set_withheld({"SKU00007": 0})
        rows = {r["sku"]: r for r in client.read_stock()}
        assert {s for s, r in rows.items() if r["paused"]} == {"SKU00120"}
        assert rows["SKU00007"]["sellable"] == ON_HAND["SKU00007"] + DRIFT["SKU00007"]


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_faults_are_retried(channel: str, serve: Callable[[object], str]) -> None:
    faults = FaultConfig(rate_limit=0.25, server_error=0.25, token_expiry_after=3, seed=4)
    gateway = _gateway(channel, faults)
    with make_http_client(timeout=5, policy=FAST) as http:
        client = _stock_client(gateway, serve(gateway.app), http)
        for _ in range(2):
            client.set_withheld({s: 1 for s in SKUS[:10]})
            client.set_paused(SKUS[:4], True)
        rows = {r["sku"]: r for r in client.read_stock()}
        stats = http.stats(channel)
    assert sorted(rows) == SKUS
    assert {s for s, r in rows.items() if r["paused"]} == set(SKUS[:4])
    assert all(rows[s]["withheld"] == 1 for s in SKUS[:10])
    counts = gateway.faults.counts
    assert counts.get("rate_limit", 0) + counts.get("server_error", 0) > 0
    assert stats.retries > 0 and gateway.tokens.refreshes >= 1


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_unknown_sku_or_wrong_secret_fails_clearly(
    channel: str, serve: Callable[[object], str]
) -> None:
    gateway = _gateway(channel)
    base_url = serve(gateway.app)
    with make_http_client(timeout=5, policy=FAST) as http:
        client = _stock_client(gateway, base_url, http)
        with pytest.raises(IngestError):
            client.set_withheld({"SKU00001": 3, "NO-SUCH-SKU": 1})
        assert gateway.stock.rows(["SKU00001"])[0].withheld == LOCKED["SKU00001"]  # none changed
        calls = http.stats(channel).calls
        assert calls == 1  # a refused request is not retried
        wrong = {**gateway.credentials, "base_url": base_url}
        for field in ("app_secret", "client_secret", "sign_secret", "access_token", "session"):
            if field in wrong:
                wrong[field] = "0" * len(wrong[field])
        with pytest.raises(IngestError):
            build_stock_client(channel, wrong, http).read_stock()
