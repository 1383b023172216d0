"""The Dagster UI as a data engineer first sees it, in a real headless Chromium.

Debian's `chromium` (installed by `make browser-deps`, never Playwright's own download) driven
by Playwright against `dagster-webserver` serving the project's definitions (workspace.yaml).
The webserver only reads definitions here, so its instance lives in a temp DAGSTER_HOME and no
warehouse is started. Screenshots go to the test's temp dir; with
ORDERPULSE_UPDATE_SCREENSHOTS=1 the asset graph is also copied to docs/images/ for the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README_SCREENSHOT = ROOT / "docs" / "images" / "asset-graph.png"
UI_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium and "
        "fonts-noto-cjk (needs apt-get as root)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _asset_count(port: int) -> int:
    body = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return len(json.load(response)["data"]["assetNodes"])
    except (OSError, KeyError, TypeError, ValueError):
        return 0


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Path) -> Iterator[str]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port; its base URL."""
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "dagster_home").mkdir()
    (tmp / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(tmp / "dagster_home"),
        ORDERPULSE_HOME=str(tmp / "home"),
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
    )
    port = _free_port()
    log_path = tmp / "webserver.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180  # loading the definitions on a busy 2-core host
        while not _asset_count(port):
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster-webserver did not serve the definitions"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Chromium with a fresh user-data dir and a desktop-sized window."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture(scope="module")
def ui(webserver: str, browser_context) -> tuple[str, object]:
    """The webserver's URL and a browser that has dismissed Dagster's first-visit dialog."""
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.goto(f"{webserver}/asset-groups")
    # a release that asks nothing on a first visit just waits out the timeout
    with contextlib.suppress(sync_api.TimeoutError):
        page.get_by_role("button", name="Skip").click(timeout=15_000)
    return webserver, browser_context


def _open(context, url: str):
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(url)
    return page


def _graph_url(base: str, selection: str) -> str:
    return f"{base}/asset-groups~" + quote(selection, safe=':"')


def test_asset_graph_shows_the_dbt_models_and_their_checks(ui, tmp_path: Path) -> None:
    webserver, browser_context = ui
    page = _open(browser_context, _graph_url(webserver, 'group:"marts"'))
    node = page.locator("foreignObject")
    for model in ("fct_orders", "order_holographic", "dim_warehouses"):
        node.filter(has_text=model).first.wait_for()
    # the graph draws the nodes in view (the health models sit a column further right, past
    # the zoom's limit); the group's list beside it names every model
    for model in ("order_health_checks", "order_health_daily"):
        page.get_by_text(model, exact=True).first.wait_for()
    time.sleep(1)  # let the graph's zoom-to-fit animation settle before the picture
    page.screenshot(path=tmp_path / "asset-graph.png")
    if os.environ.get("ORDERPULSE_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "asset-graph.png", README_SCREENSHOT)

    # two nodes of one group: drawn in full, with their kinds and their asset checks counted
    # ("0 / 22": none evaluated yet of the dbt tests and GX suite attached to the model)
    selection = 'key:"marts/fct_orders" or key:"marts/order_holographic"'
    page = _open(browser_context, _graph_url(webserver, selection))
    for model in ("fct_orders", "order_holographic"):
        full = node.filter(has_text=model).filter(has_text=re.compile(r"Asset checks.*\d+ / \d+"))
        full.first.wait_for()
        assert "dbt" in (full.first.text_content() or "")
    page.screenshot(path=tmp_path / "asset-graph-detail.png")


def test_asset_page_shows_description_metadata_and_checks(ui, tmp_path: Path) -> None:
    webserver, browser_context = ui
    page = _open(browser_context, f"{webserver}/assets/marts/order_holographic")
    # the dbt model's description, Chinese included, and the definition's metadata
    page.get_by_text("订单全息档案: one row per order", exact=False).first.wait_for()
    # the table name (<database>.marts.order_holographic: the database is the one the manifest
    # was parsed against, which differs between test workers)
    for text in ("data-engineering", ".marts.order_holographic", "platform_order_no"):
        page.get_by_text(text, exact=False).first.wait_for()
    page.screenshot(path=tmp_path / "order_holographic.png", full_page=True)

    page = _open(browser_context, f"{webserver}/assets/marts/fct_orders?view=checks")
    # dbt data tests and the Great Expectations suite, both as asset checks
    for check in ("fct_orders_row_checks", "gx_fct_orders"):
        page.get_by_text(check, exact=False).first.wait_for()
    page.screenshot(path=tmp_path / "fct_orders-checks.png")


def _glyph_cells(page, text: str, path: Path) -> list[bytes]:
    """Screenshot `text` drawn one 48 px glyph per fixed-width cell; the cells' grey pixels."""
    from PIL import Image

    cells = "".join(f'<span style="display:inline-block;width:64px">{c}</span>' for c in text)
    page.set_content(
        f'<html lang="zh-CN"><body style="margin:0;background:#fff">'
        f'<div id="t" style="font:48px sans-serif;color:#000;white-space:nowrap;'
        f'display:inline-block;line-height:64px">{cells}</div></body></html>'
    )
    page.locator("#t").screenshot(path=path)
    image = Image.open(path).convert("L")
    return [image.crop((i * 64, 0, (i + 1) * 64, 64)).tobytes() for i in range(len(text))]


def _distinct(cells: list[bytes]) -> int:
    """How many cells differ from one another by more than anti-aliasing would."""
    groups: list[bytes] = []
    for cell in cells:
        if all(sum(abs(a - b) for a, b in zip(cell, g, strict=True)) > 64 * 255 for g in groups):
            groups.append(cell)
    return len(groups)


def test_chinese_text_renders_as_glyphs_not_boxes(browser_context, tmp_path: Path) -> None:
    page = browser_context.new_page()
    # six different characters: with a CJK font, six different glyphs; without one, six
    # identical "missing glyph" boxes, which the control row (unassigned code points) shows
    chinese = _glyph_cells(page, "订单全息档案", tmp_path / "chinese.png")
    missing = _glyph_cells(page, "\u0378\u0379\u0380\u0381\u0382\u0383", tmp_path / "missing.png")
    page.close()
    assert _distinct(missing) == 1, "the control row should draw one box six times"
    assert _distinct(chinese) == 6, (
        "Chinese characters render as missing-glyph boxes: install a CJK font "
        "(`make browser-deps`: Debian's fonts-noto-cjk)"
    )
    assert len(set(chinese[0])) > 8, "the first glyph's cell is blank"
