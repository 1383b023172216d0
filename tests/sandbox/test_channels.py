"""config/channels.yaml is the one channel registry: every channel list and per-channel table
of the sandbox covers exactly its channels (a failure names what is missing or extra), and the
sandbox reads the YAML itself instead of importing `connectors`. A marketplace's sandbox facts
live on its gateway class, which is discovered, not registered: adding one is one module."""

from __future__ import annotations

import ast
import pkgutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from sandbox import catalog, channels, exports, gateways, incidents, world, world_plan
from sandbox.gateways import GATEWAYS
from sandbox.model import CHANNELS, MARKETPLACES, Order

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = yaml.safe_load((ROOT / "config" / "channels.yaml").read_text(encoding="utf-8"))
KINDS = {name: entry["kind"] for name, entry in REGISTRY["channels"].items()}
ALL = set(KINDS)


def of_kind(*kinds: str) -> set[str]:
    return {name for name, kind in KINDS.items() if kind in kinds}


def differs(what: str, have: set[str], want: set[str]) -> str:
    return (
        f"{what}: missing {sorted(want - have)}, not in config/channels.yaml {sorted(have - want)}"
    )


COVERAGE = {
    "sandbox.channels.CHANNELS": (lambda: set(channels.CHANNELS), ALL),
    "sandbox.model.CHANNELS": (lambda: set(CHANNELS), ALL),
    "Order.channel (allowed values)": (
        lambda: set(Order.model_fields["channel"].annotation.__args__),
        ALL,
    ),
    "sandbox.model.MARKETPLACES": (lambda: set(MARKETPLACES), of_kind("marketplace")),
    "gateways registry (sandbox.gateways.GATEWAYS)": (
        lambda: set(GATEWAYS),
        of_kind("marketplace"),
    ),
    "world weights (sandbox.world_plan.CHANNEL_SHARE)": (
        lambda: set(world_plan.CHANNEL_SHARE),
        ALL,
    ),
    "shops (sandbox.catalog.SHOPS)": (lambda: set(catalog.SHOPS), ALL),
    "world shops (catalog.shops())": (lambda: set(catalog.shops()), ALL),
    "SFTP exports (sandbox.exports.EXPORT_CHANNELS)": (
        lambda: set(exports.EXPORT_CHANNELS),
        of_kind("sftp"),
    ),
    "export file formats (sandbox.exports.FORMATS)": (
        lambda: set(exports.FORMATS),
        of_kind("sftp", "file_drop"),
    ),
}


@pytest.mark.parametrize("what", list(COVERAGE))
def test_sandbox_channel_lists_cover_exactly_the_registry(what: str) -> None:
    have, want = COVERAGE[what]
    got = have()
    assert got == want, differs(what, got, want)


def test_kinds_and_subsets_agree_with_the_registry() -> None:
    assert channels.KINDS == KINDS
    extra = set(world_plan.CROSS_BORDER_CHANNELS) - ALL
    assert not extra, f"world_plan.CROSS_BORDER_CHANNELS names unknown channels {sorted(extra)}"
    for name in ("SILENT_CHANNELS", "STUCK_CHANNELS", "PRICE_CHANNELS", "INTERCEPT_CHANNELS"):
        extra = set(getattr(incidents, name)) - ALL
        assert not extra, f"incidents.{name} names unknown channels {sorted(extra)}"
    wrong = {c: cls.channel for c, cls in GATEWAYS.items() if cls.channel != c}
    assert not wrong, f"gateways registered under another channel's name: {wrong}"


def test_every_channel_has_an_order_number_shape() -> None:
    missing = []
    for channel in sorted(ALL):
        try:
            world.order_number(channel, 1, int(datetime(2026, 11, 20, tzinfo=UTC).timestamp()), 7)
        except KeyError:
            missing.append(channel)
    assert not missing, (
        f"no order-number shape for {missing}: a marketplace's is its gateway's "
        "`order_number`, the other channels' are in sandbox/world.py"
    )


def test_gateways_are_discovered_from_their_modules() -> None:
    # every module of sandbox/gateways but the support modules is one marketplace's gateway
    modules = {m.name for m in pkgutil.iter_modules(gateways.__path__)}
    platform_modules = modules - gateways.SUPPORT_MODULES
    assert {cls.__module__.rpartition(".")[2] for cls in GATEWAYS.values()} == platform_modules
    assert tuple(GATEWAYS) == MARKETPLACES  # the sandbox's order, which the servers follow
    with pytest.raises(ValueError, match=r"no sandbox gateway for the marketplaces \['amazon'\]"):
        gateways.discover(marketplaces=(*MARKETPLACES, "amazon"))
    with pytest.raises(ValueError, match="channel 'youzan' is not a marketplace"):
        gateways.discover(marketplaces=tuple(c for c in MARKETPLACES if c != "youzan"))


AMAZON = """
from sandbox.gateways.base import Gateway


class AmazonGateway(Gateway):
    channel = "amazon"
    share = 0.02
    shops = (("A1B2C3", "Orange Amazon store"),)

    @staticmethod
    def order_number(i, t, s):
        return f"114-{s % 10**7:07d}-{i:07d}"
"""


def _forget(package: str) -> None:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def test_a_new_marketplace_is_one_gateway_module(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "more_gateways"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "amazon.py").write_text(AMAZON, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = gateways.discover("more_gateways", ("amazon",))
        assert list(found) == ["amazon"]
        assert found["amazon"].order_number(3, datetime(2026, 11, 20), 42) == "114-0000042-0000003"
        _forget("more_gateways")
        (pkg / "amazon.py").write_text(AMAZON.split("    share")[0], encoding="utf-8")
        with pytest.raises(ValueError, match=r"lacks the world's facts \['share', 'shops'"):
            gateways.discover("more_gateways", ("amazon",))
    finally:
        _forget("more_gateways")


def test_a_marketplace_fact_lives_only_on_its_gateway() -> None:
    for channel, cls in GATEWAYS.items():
        assert world_plan.CHANNEL_SHARE[channel] == cls.share > 0
        assert catalog.SHOPS[channel] == cls.shops and cls.shops
        numbers = {cls.order_number(i, datetime(2026, 11, 20), 123456789) for i in range(50)}
        assert len(numbers) == 50, f"{channel}: order numbers not unique per index"
    with pytest.raises(ValueError, match=r"share of \['taobao'\] belongs on their gateway"):
        gateways.per_channel("share", {"taobao": 0.3, "pos": 0.05})


def test_the_sandbox_order_of_channels_is_stable() -> None:
    # the world generator draws by index into CHANNELS: the same registry, the same order
    assert channels.CHANNELS == (
        "taobao", "jd", "douyin", "pdd", "kuaishou", "youzan",
        "h5mall", "pos", "regional_a", "regional_b",
    )  # fmt: skip
    reversed_registry = dict(reversed(list(KINDS.items())))
    assert channels.ordered(reversed_registry)[:6] == tuple(
        reversed([c for c in KINDS if KINDS[c] == "marketplace"])
    )
    assert channels.ordered(KINDS) == channels.CHANNELS


def test_a_bad_registry_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  amazon: {kind: carrier_pigeon}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"channels\.amazon\.kind is 'carrier_pigeon'"):
        channels.load_kinds(path)
    path.write_text("defaults: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no `channels:`"):
        channels.load_kinds(path)


def test_sandbox_never_imports_connectors_dagster_or_the_cli() -> None:
    # its own implementation of each protocol (checked against the connectors' one), a plain
    # library (no Dagster), and nothing imports the CLI; `kernel` is allowed
    banned = ("connectors", "orchestration", "orderpulse", "dagster")
    offenders = []
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in banned
            ]
    assert not offenders, offenders
