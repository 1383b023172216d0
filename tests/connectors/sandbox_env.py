"""The sandbox as the connector tests see it: gateways on loopback, their credentials written
to a `sandbox.json` (read back through `connectors.credentials`, as in production), the ground
truth, and the faults each gateway injected."""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.faults import FaultConfig
from sandbox.model import Order

ALL_CHANNELS = ("taobao", "jd", "douyin", "pdd", "kuaishou", "youzan")
MARKETPLACES = tuple(
    c for c in ALL_CHANNELS if importlib.util.find_spec(f"sandbox.gateways.{c}") is not None
)
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
SEED, ORDERS, DAYS = 5, 1500, 3


@dataclass
class SandboxEnv:
    home: Path
    days: int
    all_orders: list[Order]
    gateways: dict[str, Any] = field(default_factory=dict)

    @property
    def sandbox_file(self) -> Path:
        return self.home / "sandbox.json"

    def credentials(self, channel: str) -> dict:
        from connectors.credentials import load_credentials

        return load_credentials(channel, self.sandbox_file, environ={})

    def orders(self, channel: str) -> dict[str, Order]:
        return {o.platform_order_no: o for o in self.all_orders if o.channel == channel}

    def truth(self, channel: str) -> dict[str, dict]:
        return {no: o.truth() for no, o in self.orders(channel).items()}

    def fault_counts(self, channel: str) -> dict[str, int]:
        counts = dict(self.gateways[channel].faults.counts)
        refreshes = self.gateways[channel].tokens.refreshes
        return {**counts, "token_refresh": refreshes}

    def set_faults(self, channel: str, config: FaultConfig) -> None:
        self.gateways[channel].set_faults(config)


def gateway_class(channel: str) -> type:
    module = importlib.import_module(f"sandbox.gateways.{channel}")
    return next(
        value
        for name, value in vars(module).items()
        if name.endswith("Gateway") and name != "Gateway" and isinstance(value, type)
    )


def start_env(
    home: Path, serve, world_orders: list[Order], faults: dict[str, FaultConfig] | None = None
) -> SandboxEnv:  # noqa: ANN001
    env = SandboxEnv(home, DAYS, world_orders)
    channels: dict[str, dict] = {}
    for channel in MARKETPLACES:
        gateway = gateway_class(channel)(
            world_orders, faults=(faults or {}).get(channel) or FaultConfig()
        )
        base_url = serve(gateway.app)
        env.gateways[channel] = gateway
        channels[channel] = {"base_url": base_url, **gateway.credentials}
    home.mkdir(parents=True, exist_ok=True)
    env.sandbox_file.write_text(json.dumps({"channels": channels}))
    return env
