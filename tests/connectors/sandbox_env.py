"""The sandbox as the connector tests see it: `sandbox.server.Sandbox` (its six gateways on
loopback, credentials in its `sandbox.json`, read back through `connectors.credentials` as in
production), the ground truth, and the faults each gateway injected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox.faults import FaultConfig
from sandbox.model import MARKETPLACES, Order
from sandbox.server import Sandbox

# every fault kind at once; slow answers outlast the tests' 0.5 s client timeout
ALL_FAULTS = FaultConfig(
    rate_limit=0.08,
    server_error=0.08,
    slow=0.03,
    slow_seconds=1.0,
    page_shift=True,
    duplicates=True,
    token_expiry_after=15,
    seed=11,
)
NO_FAULTS = FaultConfig()
SEED, ORDERS, DAYS = 5, 1500, 3  # a few hundred orders per marketplace over three days


@dataclass
class SandboxEnv:
    sandbox: Sandbox

    @property
    def home(self) -> Path:
        return self.sandbox.home

    @property
    def days(self) -> int:
        return self.sandbox.days

    @property
    def sandbox_file(self) -> Path:
        return self.home / "sandbox.json"

    def credentials(self, channel: str) -> dict:
        from connectors.credentials import load_credentials

        return load_credentials(channel, self.sandbox_file, environ={})

    def orders(self, channel: str) -> dict[str, Order]:
        return {o.platform_order_no: o for o in self.sandbox.world.orders if o.channel == channel}

    def truth(self, channel: str) -> dict[str, dict]:
        rows = self.sandbox.truth()["orders"]
        return {r["platform_order_no"]: r for r in rows if r["channel"] == channel}

    def fault_counts(self, channel: str) -> dict[str, int]:
        gateway = self.sandbox.gateways[channel]
        return {**gateway.faults.counts, "token_refresh": gateway.tokens.refreshes}

    def opened(self, channel: str, value: str) -> str | None:
        """The clear text behind `value` if it is this channel's receiver ciphertext."""
        return self.sandbox.gateways[channel].sealer.open(value)

    def set_faults(self, channel: str, config: FaultConfig) -> None:
        self.sandbox.set_faults(channel, config)

    def reset(self) -> None:
        for channel in MARKETPLACES:
            self.sandbox.set_faults(channel, NO_FAULTS)
