"""The marketplace gateways of the sandbox, one module per platform, each an ASGI app in that
platform's own protocol (see each module's docstring and docs/channels.md).

A marketplace of config/channels.yaml is one module `sandbox/gateways/<channel>.py` holding a
`Gateway` subclass with `channel = "<channel>"`; nothing registers it by hand. Importing this
package imports every module of it (but the support modules, `SUPPORT_MODULES`) and collects the
subclasses into `GATEWAYS` (channel -> class, in the sandbox's order of `sandbox.channels`),
checked against the registry's marketplaces: a marketplace without a gateway, a gateway for a
channel that is not a marketplace, or two gateways for one channel is a `ConfigError`.

`Gateway(orders, credentials, faults=...)` builds one, `.app` is the ASGI app, `.credentials`
the sandbox.json entry (without base_url). Each class also builds its platform's push messages
(`build_push`, sent by `sandbox.push`) and carries the world's facts about its marketplace
(`share`, `shops`, `order_number`), which `sandbox.world_plan`, `sandbox.catalog` and
`sandbox.world` read through `per_channel`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import TypeVar

from kernel.config import ConfigError
from sandbox.channels import CHANNELS_FILE, MARKETPLACES
from sandbox.gateways.base import WORLD_FACTS, Gateway

# modules of this package that are not a platform (machinery, sample orders, payload fixtures)
SUPPORT_MODULES = frozenset({"base", "common", "store", "samples", "fixtures", "sdk_json", "stock"})

T = TypeVar("T")


def discover(
    package: str = __name__, marketplaces: tuple[str, ...] = MARKETPLACES
) -> dict[str, type[Gateway]]:
    """channel -> the `Gateway` subclass of `package`'s modules (support modules skipped), in
    the order of `marketplaces`; ConfigError unless they are exactly `marketplaces`."""
    found: dict[str, type[Gateway]] = {}
    where = importlib.import_module(package)
    for info in pkgutil.iter_modules(where.__path__):
        if info.name in SUPPORT_MODULES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        classes = [
            cls
            for cls in vars(module).values()
            if inspect.isclass(cls)
            and issubclass(cls, Gateway)
            and cls is not Gateway
            and cls.__module__ == module.__name__
        ]
        if not classes:
            raise ConfigError(
                f"{module.__name__} defines no Gateway subclass (a support module? add it to "
                f"SUPPORT_MODULES in {__name__})"
            )
        for cls in classes:
            channel = getattr(cls, "channel", None)
            if channel in found:
                raise ConfigError(
                    f"two sandbox gateways for {channel!r}: {found[channel].__qualname__} and "
                    f"{module.__name__}.{cls.__qualname__}"
                )
            if channel not in marketplaces:
                raise ConfigError(
                    f"{module.__name__}.{cls.__qualname__}: channel {channel!r} is not a "
                    f"marketplace of {CHANNELS_FILE} ({', '.join(marketplaces)})"
                )
            missing = [name for name in WORLD_FACTS if not hasattr(cls, name)]
            if missing:
                raise ConfigError(
                    f"{module.__name__}.{cls.__qualname__} lacks the world's facts {missing} "
                    "(see sandbox.gateways.base.Gateway)"
                )
            found[channel] = cls
    absent = [c for c in marketplaces if c not in found]
    if absent:
        raise ConfigError(
            f"{CHANNELS_FILE}: no sandbox gateway for the marketplaces {absent}: add "
            f"sandbox/gateways/<channel>.py with a Gateway subclass whose channel is its name"
        )
    return {c: found[c] for c in marketplaces}


GATEWAYS: dict[str, type[Gateway]] = discover()


def per_channel(fact: str, elsewhere: Mapping[str, T]) -> dict[str, T]:
    """One per-channel table of the world: each marketplace's `fact` from its gateway class
    (`share`, `shops` or `order_number`), then `elsewhere`, the same fact for the channels
    without a gateway. A marketplace in `elsewhere` is an error (its fact lives on its
    gateway); whether every channel is covered is tests/sandbox/test_channels.py's check."""
    if fact not in WORLD_FACTS:
        raise ValueError(f"{fact!r} is not a world fact of a gateway ({', '.join(WORLD_FACTS)})")
    twice = sorted(set(elsewhere) & set(GATEWAYS))
    if twice:
        raise ValueError(f"{fact} of {twice} belongs on their gateway classes, not in a table")
    return {**{c: getattr(cls, fact) for c, cls in GATEWAYS.items()}, **elsewhere}


__all__ = ["GATEWAYS", "SUPPORT_MODULES", "Gateway", "discover", "per_channel"]
