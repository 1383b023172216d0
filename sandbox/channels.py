"""The sandbox's channel list, read from `config/channels.yaml` (the one channel registry).

The sandbox never imports `connectors` (each implements the platforms on its own, so neither
can hide the other's mistake), so it reads only what it needs here: each channel's name and
kind. Everything channel-shaped in the sandbox derives from this or is checked against it
(tests/sandbox/test_channels.py): the gateways, the world's per-channel weights and order
numbers, the shops of the catalogue, the SFTP exports.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kernel.config import CONFIG_DIR, ConfigError

CHANNELS_FILE = CONFIG_DIR / "channels.yaml"
# The sandbox's order of channels: by kind in this order, config order within a kind. The
# world generator draws by index into this tuple, so reordering config/channels.yaml must not
# change a seeded world; a new channel of a known kind goes after the others of its kind.
KIND_ORDER = ("marketplace", "db_bridge", "file_drop", "sftp")


def load_kinds(path: Path = CHANNELS_FILE) -> dict[str, str]:
    """Channel name -> kind, in the file's order (ConfigError naming the file if it is bad)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the channel registry: {err}") from err
    channels = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(channels, dict) or not channels:
        raise ConfigError(f"{path}: no `channels:` mapping (channel name -> {{kind: ...}})")
    kinds = {}
    for name, entry in channels.items():
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in KIND_ORDER:
            raise ConfigError(
                f"{path}: channels.{name}.kind is {kind!r}; the sandbox knows "
                f"{', '.join(KIND_ORDER)}"
            )
        kinds[str(name)] = kind
    return kinds


def ordered(kinds: dict[str, str]) -> tuple[str, ...]:
    """The channels of `kinds` in the sandbox's order (see KIND_ORDER)."""
    return tuple(sorted(kinds, key=lambda name: KIND_ORDER.index(kinds[name])))  # stable


KINDS: dict[str, str] = load_kinds()
CHANNELS: tuple[str, ...] = ordered(KINDS)


def of_kind(kind: str) -> tuple[str, ...]:
    """The channels of one kind, in the sandbox's order."""
    return tuple(c for c in CHANNELS if KINDS[c] == kind)


MARKETPLACES: tuple[str, ...] = of_kind("marketplace")  # each has a gateway (sandbox.gateways)
SFTP_CHANNELS: tuple[str, ...] = of_kind("sftp")  # daily CSV exports on the SFTP server
