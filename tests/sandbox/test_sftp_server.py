"""The sandbox SFTP server, reached with an independent client (paramiko, RejectPolicy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest

from sandbox.model import Order
from sandbox.sftp_server import SftpHandle, start_sftp


def _order(no: str, channel: str) -> Order:
    return Order.model_validate(
        {
            "channel": channel,
            "platform_order_no": no,
            "shop_id": "S1",
            "created_at": "2026-11-20T10:00:00+08:00",
            "buyer_id": "B1",
            "receiver": {
                "name": "李四",
                "phone": "13900002222",
                "province": "广东省",
                "city": "广州市",
                "district": "天河区",
                "address": "体育西路2号",
            },
            "items": [{"sku": "SKU1", "qty": 1, "price": "88"}],
        }
    )


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[SftpHandle]:
    orders = [_order("A1", "regional_a"), _order("B1", "regional_b")]
    handle = start_sftp(orders, tmp_path / "sftp", password="s3cret-pw")
    yield handle
    handle.stop()


def _client(info: dict, known_hosts: str, **auth) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        info["host"], info["port"], username=info["username"],
        look_for_keys=False, allow_agent=False, timeout=10, **auth,
    )  # fmt: skip
    return client


def test_serves_each_platform_directory_with_key_auth(server: SftpHandle) -> None:
    info = server.info()
    assert info["directories"] == {"regional_a": "/regional_a", "regional_b": "/regional_b"}
    key = paramiko.PKey.from_path(info["private_key_path"])
    client = _client(info, info["known_hosts_path"], pkey=key)
    try:
        sftp = client.open_sftp()
        assert sorted(sftp.listdir("/")) == ["regional_a", "regional_b"]
        assert sftp.listdir("/regional_a") == ["order_20261120.csv"]
        with sftp.open("/regional_b/order_20261120.csv", "rb") as f:
            assert f.read().decode("gbk").startswith("订单号,门店,创建时间")
        # chrooted: the keys next to the files are out of reach
        with pytest.raises(OSError):
            sftp.stat("/../keys/client_ed25519")
    finally:
        client.close()


def test_password_login_and_refusals(server: SftpHandle, tmp_path: Path) -> None:
    info = server.info()
    _client(info, info["known_hosts_path"], password="s3cret-pw").close()
    with pytest.raises(paramiko.AuthenticationException):
        _client(info, info["known_hosts_path"], password="wrong")
    stranger = tmp_path / "stranger_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    with pytest.raises(paramiko.AuthenticationException):
        _client(info, info["known_hosts_path"], pkey=paramiko.PKey.from_path(stranger))
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _client(info, str(empty), password="s3cret-pw")


def test_host_key_persists_across_restarts_and_files_can_be_replaced(tmp_path: Path) -> None:
    root = tmp_path / "sftp"
    first = start_sftp(None, root)
    host_key = first.host_key_path.read_bytes()
    first.stop()
    again = start_sftp(None, root)
    try:
        assert again.host_key_path.read_bytes() == host_key
        line = again.known_hosts_path.read_text()
        assert line.startswith(f"[127.0.0.1]:{again.port} ssh-ed25519 ")
        again.publish("regional_a", "order_20261120.csv", b"v1")
        again.publish("regional_a", "order_20261120.csv", b"version 2")
        info = again.info()
        client = _client(info, info["known_hosts_path"],
                         pkey=paramiko.PKey.from_path(info["private_key_path"]))  # fmt: skip
        try:
            with client.open_sftp().open("/regional_a/order_20261120.csv", "rb") as f:
                assert f.read() == b"version 2"
        finally:
            client.close()
        with pytest.raises(ValueError):
            again.publish("regional_a", "../escape.csv", b"x")
    finally:
        again.stop()
