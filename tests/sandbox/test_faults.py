"""FaultConfig validation and the injector's seeded, bounded behaviour (the per-platform error
shapes of each fault are tested over HTTP in test_gateway_protocols.py)."""

from __future__ import annotations

import pytest

from sandbox.faults import FaultConfig, FaultInjector


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_limit": 1.5}, "rate_limit"),
        ({"slow": -0.1}, "slow"),
        ({"rate_limit": 0.5, "server_error": 0.5}, "keep it below 1"),
        ({"slow_seconds": -1}, "slow_seconds"),
        ({"token_expiry_after": 0}, "token_expiry_after"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultConfig(**kwargs)


def test_the_same_seed_draws_the_same_faults() -> None:
    config = FaultConfig(rate_limit=0.2, server_error=0.2, slow=0.2, seed=11)
    a, b = FaultInjector(config), FaultInjector(config)
    draws = [a.draw() for _ in range(200)]
    assert draws == [b.draw() for _ in range(200)]
    assert {"rate_limit", "server_error", "slow", None} == set(draws)
    other = FaultInjector(FaultConfig(rate_limit=0.2, server_error=0.2, slow=0.2, seed=12))
    assert [other.draw() for _ in range(200)] != draws


def test_draw_shares_follow_the_probabilities() -> None:
    injector = FaultInjector(FaultConfig(rate_limit=0.3, server_error=0.1, seed=4))
    draws = [injector.draw() for _ in range(4000)]
    assert 0.25 < draws.count("rate_limit") / 4000 < 0.35
    assert 0.06 < draws.count("server_error") / 4000 < 0.14
    assert "slow" not in draws
    assert injector.counts["rate_limit"] == draws.count("rate_limit")


def test_no_faults_configured_draws_nothing() -> None:
    injector = FaultInjector()
    assert {injector.draw() for _ in range(100)} == {None}
    assert not FaultConfig().any and FaultConfig(duplicates=True).any


def test_a_window_is_shifted_at_most_once() -> None:
    injector = FaultInjector(FaultConfig(page_shift=True))
    assert injector.take_shift(("w", 1))
    assert not injector.take_shift(("w", 1))
    assert injector.take_shift(("w", 2))
    assert not FaultInjector(FaultConfig()).take_shift(("w", 1))


def test_reconfiguring_resets_the_state() -> None:
    injector = FaultInjector(FaultConfig(page_shift=True, rate_limit=0.5, seed=1))
    first = [injector.draw() for _ in range(20)]
    injector.take_shift(("w",))
    injector.configure(FaultConfig(page_shift=True, rate_limit=0.5, seed=1))
    assert [injector.draw() for _ in range(20)] == first
    assert injector.take_shift(("w",))
