"""config/channels.yaml is the one channel registry: parsed once per process, another file
loadable by path, and every connector-side channel list (marketplace clients, credential
fields, push verifiers) derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.channels_config import load_channels, marketplaces
from connectors.credentials import CredentialsError, load_credentials, required_fields
from connectors.marketplace import build_client
from connectors.push_verify import verifier
from kernel.config import ConfigError


def _write(tmp_path: Path, channels: str) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(f"channels:\n{channels}", encoding="utf-8")
    return path


def test_the_registry_is_parsed_once_and_another_file_by_path(tmp_path) -> None:
    assert load_channels() is load_channels()
    other = load_channels(_write(tmp_path, "  jd: {kind: marketplace, credentials: [base_url]}\n"))
    assert other is not load_channels() and list(other.channels) == ["jd"]
    assert other.channels["jd"].schedule == "*/10 * * * *"  # defaults still fill in


def test_every_marketplace_derives_its_client_fields_and_verifier() -> None:
    registry = load_channels()
    assert marketplaces() == tuple(registry.of_kind("marketplace"))
    for channel in marketplaces():
        client = build_client(channel, {"base_url": "http://127.0.0.1:1"}, http=None)  # type: ignore[arg-type]
        assert client.channel == channel and type(client).__module__ == f"connectors.{channel}"
        assert verifier(channel).__name__ == f"verify_{channel}"
        fields = required_fields(channel)
        assert fields == tuple(registry.channels[channel].credentials) and "base_url" in fields


def test_a_channel_outside_the_registry_is_refused_by_name() -> None:
    with pytest.raises(CredentialsError, match="not a marketplace in config/channels.yaml"):
        load_credentials("h5mall", environ={})
    with pytest.raises(ValueError, match="one of taobao"):
        build_client("nosuch", {}, http=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  jd: {kind: marketplace}", "kind marketplace needs credentials"),
        ("  jd: {kind: marketplace, credentials: [app_key]}", "base_url"),
        ("  jd: {kind: marketplace, credentials: [base_url, App-Key]}", "not field names"),
        (
            "  h5: {kind: db_bridge, credentials: [base_url], db_bridge: {view: v, key_column: k}}",
            "credentials is for kind marketplace only",
        ),
    ],
)
def test_credential_fields_are_validated(tmp_path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_channels(_write(tmp_path, entry + "\n"))
