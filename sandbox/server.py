"""The sandbox process: the world, the marketplace gateways, the merchant systems API, the SFTP
drop, the ERP database and the POS drop folder, with `sandbox.json` telling clients where they are.

`Sandbox(home, ...)` (a context manager) generates the world (`sandbox.world`), merges a
scenario file (`sandbox.scenario`), serves every gateway with uvicorn on 127.0.0.1 (ports chosen
by the OS) in background threads, and writes `home/sandbox.json` (mode 0600) and
`home/sandbox/truth.json`. With `live=True` it keeps publishing new marketplace orders in real
time; with a `webhook_url` it pushes every order change as it becomes visible.

sandbox.json:
    {"channels": {"taobao": {"base_url", "app_key", "app_secret", "session", "refresh_token"},
                  "jd": {"base_url", "app_key", "app_secret", "access_token", "refresh_token"},
                  "douyin": {"base_url", "app_key", "app_secret", "access_token", "refresh_token"},
                  "pdd": {"base_url", "client_id", "client_secret", "access_token",
                          "refresh_token"},
                  "kuaishou": {"base_url", "app_key", "app_secret", "sign_secret",
                               "access_token", "refresh_token"},
                  "youzan": {"base_url", "client_id", "client_secret", "access_token",
                             "refresh_token"}},
     "merchant_systems": {"base_url", "token"}, "sftp": {...}, "erp": {...}, "pos": {"folder"},
     "webhook_url": ..., "robot": {"webhook_url", "secret"} (the group robot, robot_receiver.py),
     "generated": {"seed", "orders", "days", "end", "live", "calm", "marketplaces_only",
                   "oldest_order"}}

The truth (`truth()`, truth.json) lists the orders and the incidents planted in the world
(`sandbox.incidents`); a `calm` sandbox plants none.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.faults import FaultConfig
from sandbox.gateways import GATEWAYS, Gateway
from sandbox.gateways.samples import order_number
from sandbox.gateways.store import epoch_s
from sandbox.model import MARKETPLACES, Order
from sandbox.push import Pusher
from sandbox.robot_receiver import start_robot_receiver

log = logging.getLogger(__name__)

LARGE_WORLD = 200_000  # above this many orders: stream the world, marketplaces only
LIVE_INTERVAL = 2.0  # seconds between live ticks
STATIC_END_AGO = timedelta(minutes=10)  # `sandbox serve` without --live: the world's end
LIVE_ORDERS_PER_TICK = 2
LIVE_TIME_SCALE = 60  # a template's hour of lifecycle becomes a live minute
# labels that follow from attributes a live copy keeps (the others describe the template's time)
LIVE_KEPT_LABELS = frozenset(
    {"cross_border", "remote_region", "b2b_address", "virtual_carrier_phone", "customs_incomplete"}
)


@dataclass
class RunningApp:
    """One ASGI app served by uvicorn in a background thread."""

    name: str
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    app: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_app(app: Any, name: str = "app") -> RunningApp:
    """Serve `app` on 127.0.0.1 on a port the OS picks, until `.stop()`. Access logs are off:
    some platforms put tokens in the query string."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{name}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox {name} did not start on 127.0.0.1")
        time.sleep(0.01)
    return RunningApp(name, server, thread, sock.getsockname()[1], app)


class Sandbox:
    """The local outside world. Use as a context manager, or `.start()` / `.stop()`.

    Beyond the documented arguments: `erp_admin_url` (the PostgreSQL server for the ERP
    database; default: the process's warehouse server) and `live_interval` (seconds between
    live ticks). Rejected scenario lines are in `.scenario_errors` (line number and reason).
    Above LARGE_WORLD orders the world is streamed, marketplaces only, unless `full_world`:
    every channel and the merchant systems' records, in memory (about 1.6 GiB per 100,000
    orders: for a sandbox in a process of its own, `orderpulse sandbox serve --full-world`)."""

    def __init__(
        self,
        home: Path,
        *,
        seed: int = 7,
        orders: int = 10_000,
        days: int = 3,
        end: datetime | None = None,
        scenario: Path | None = None,
        add: bool = False,
        faults: dict[str, FaultConfig] | None = None,
        webhook_url: str | None = None,
        live: bool = False,
        erp_admin_url: str | None = None,
        live_interval: float = LIVE_INTERVAL,
        calm: bool = False,
        full_world: bool = False,
    ) -> None:
        self.home = Path(home)
        self.calm = calm
        self.seed, self.orders, self.days, self.end = seed, orders, days, end
        self.scenario, self.add = (Path(scenario) if scenario else None), add
        self.faults = dict(faults or {})
        self.webhook_url = webhook_url
        self.live = live
        self.erp_admin_url = erp_admin_url
        self.live_interval = live_interval
        self.world: Any = None
        self.scenario_errors: list = []
        self.gateways: dict[str, Gateway] = {}
        self._apps: dict[str, RunningApp] = {}
        self._sftp: Any = None
        self._erp: dict = {}
        self._pos: dict = {}
        self._merchant_systems_token = ""
        self._truth_rows: list[dict] = []
        self._templates: list[Order] = []
        self.large = orders > LARGE_WORLD and not full_world
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pusher: Pusher | None = None
        self._endpoints: dict = {}
        self._stock_incidents: list[dict] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        try:
            self._build_world()
            self._start_gateways()
            self._load_platform_stock()
            self._start_merchant_systems()
            self._start_sftp()
            self._drop_pos()
            self._publish_erp()
            self._write_endpoints()
            self._write_truth()
            # the world is built and mostly immortal from here: keep the collector from
            # rescanning millions of objects while pages are served
            gc.collect()
            gc.freeze()
            if self.webhook_url:
                self._pusher = Pusher(self.webhook_url, self._endpoints["channels"])
            if self.live or self._pusher:
                self._spawn(self._tick_loop, "sandbox-live")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._threads and self.large and self.live:
            self._write_truth()
        self._threads.clear()
        for app in self._apps.values():  # signal all first: they shut down in parallel
            app.server.should_exit = True
        for app in self._apps.values():
            app.stop()
        self._apps.clear()
        if self._sftp is not None:
            self._sftp.stop()
            self._sftp = None
        if self._pusher is not None:
            self._pusher.close()
            self._pusher = None

    def serve_forever(self) -> None:
        """Block until Ctrl-C or SIGTERM, then stop."""
        done = threading.Event()
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    # -- what others read ---------------------------------------------------------------------
    @property
    def endpoints(self) -> dict:
        """The sandbox.json document (endpoints and credentials)."""
        return json.loads(json.dumps(self._endpoints))

    def truth(self) -> dict:
        """Every published order in the design's contract form (`orderpulse sandbox truth`)."""
        return {"orders": self._sorted_truth_rows(), **self._truth_extras()}

    def _sorted_truth_rows(self) -> list[dict]:
        with self._lock:
            return sorted(self._truth_rows, key=lambda r: (r["channel"], r["platform_order_no"]))

    def _truth_extras(self) -> dict:
        """What the truth holds besides the orders: incidents, risk feedback, deliveries."""
        incidents = [*getattr(self.world, "incidents", []), *self._stock_incidents]
        truth: dict = {"incidents": incidents}
        feedback = getattr(self.world, "risk_feedback", [])
        if feedback:  # chargebacks and audits the merchant systems serve (sandbox.risk_feedback)
            from sandbox.merchant_systems_records import record_dict

            truth["risk_feedback"] = [record_dict(f) for f in feedback]
        app = self._apps.get("merchant_systems")
        state = getattr(getattr(app, "app", None), "state", None)
        deliveries = state.allocations.deliveries() if state is not None else []
        if deliveries:  # allocations OrderPulse sent and the sandbox played
            truth["deliveries"] = deliveries
        return truth

    def set_faults(self, channel: str, config: FaultConfig) -> None:
        """Switch `channel`'s gateway faults (takes effect on its next request)."""
        self.faults[channel] = config
        self.gateways[channel].set_faults(config)

    # -- building -------------------------------------------------------------------------------
    def _build_world(self) -> None:
        from sandbox.truth import truth_document
        from sandbox.world import generate_world

        scenario_orders: list[Order] = []
        if self.scenario is not None:
            from sandbox.scenario import load_scenario

            scenario_orders, self.scenario_errors = load_scenario(self.scenario)
            for error in self.scenario_errors:
                log.warning("scenario %s: %s", self.scenario, error)
        if self.large and (self.scenario is None or self.add):
            # a million orders: catalogue and warehouses only here, orders streamed to the
            # gateways (`_start_gateways`); SFTP, ERP and the merchant systems' records stay empty
            self.world = generate_world(self.seed, 0, self.days, self.end, calm=self.calm)
            self._scenario_orders = scenario_orders
            return
        replacing = self.scenario is not None and not self.add  # no generated orders needed
        world = generate_world(
            self.seed,
            0 if replacing else self.orders,
            self.days,
            self.end,
            calm=self.calm,
            records=self.scenario is None,  # a scenario's merge builds them for its world
        )
        if self.scenario is not None:
            from sandbox.scenario import merge_scenario

            world = merge_scenario(world, scenario_orders, self.add)
        self.world = world
        self._truth_rows = truth_document(world.orders)["orders"]
        self._templates = [o for o in world.orders if o.channel in MARKETPLACES][:5000]

    def _start_gateways(self) -> None:
        if self.large and not self.world.orders:
            self._start_streamed_gateways()
            return
        by_channel: dict[str, list[Order]] = {c: [] for c in MARKETPLACES}
        for order in self.world.orders:
            if order.channel in by_channel:
                by_channel[order.channel].append(order)
        shipments: dict[str, dict] = {c: {} for c in MARKETPLACES}
        carriers = _carrier_names()
        for s in getattr(self.world, "shipments", []) or []:
            if s.channel in shipments:
                name = carriers.get(s.carrier, s.carrier)
                shipments[s.channel][s.platform_order_no] = (s.carrier, name, s.tracking_no)
        late: dict[str, dict] = {c: {} for c in MARKETPLACES}
        for (channel, no), update in (getattr(self.world, "late_updates", {}) or {}).items():
            if channel in late:
                late[channel][no] = update
        for channel, cls in GATEWAYS.items():
            gateway = cls(
                by_channel[channel],
                faults=self.faults.get(channel),
                shipments=shipments[channel],
                late=late[channel],
            )
            self.gateways[channel] = gateway
            self._apps[channel] = serve_app(gateway.app, channel)

    def _load_platform_stock(self) -> None:
        """Each gateway's displayed stock: the WMS's, with the drift (and the planted
        `stock_diff` incidents) of `sandbox.gateways.stock`."""
        from sandbox.gateways.stock import plan_stock_drift, wms_totals
        from sandbox.incidents import MIN_ORDERS

        on_hand, locked = wms_totals(getattr(self.world, "stock", []) or [])
        sellable = {s: on_hand[s] - locked.get(s, 0) for s in on_hand}
        drift, self._stock_incidents = plan_stock_drift(
            self.seed,
            sellable,
            self.gateways,
            calm=self.calm,
            plant=len(self.world.orders) >= MIN_ORDERS,
            at=self.world.end,
        )
        for channel, gateway in self.gateways.items():
            gateway.stock.load(on_hand, locked, drift[channel])

    def _start_streamed_gateways(self) -> None:
        """Large worlds: generate the orders chunk by chunk straight into compact gateways."""
        from sandbox.truth import truth_document
        from sandbox.world import iter_orders

        for channel, cls in GATEWAYS.items():
            self.gateways[channel] = cls(faults=self.faults.get(channel), compact=True)
        replaced = {(o.channel, o.platform_order_no) for o in self._scenario_orders}
        chunks = iter_orders(self.seed, self.orders, self.days, self.end, calm=self.calm)
        for chunk in (*chunks, self._scenario_orders):
            mine = [
                o
                for o in chunk
                if o.channel in MARKETPLACES
                and (
                    chunk is self._scenario_orders
                    or (o.channel, o.platform_order_no) not in replaced
                )
            ]
            for channel, gateway in self.gateways.items():
                gateway.add_orders([o for o in mine if o.channel == channel])
            self._truth_rows.extend(truth_document(mine)["orders"])
            if len(self._templates) < 5000:
                self._templates.extend(mine[: 5000 - len(self._templates)])
        for channel, gateway in self.gateways.items():
            self._apps[channel] = serve_app(gateway.app, channel)

    def _start_merchant_systems(self) -> None:
        from sandbox.merchant_systems_api import build_merchant_systems_app

        self._merchant_systems_token = secrets.token_urlsafe(24)
        # allocations play their futures on the live clock (a model hour is a live minute)
        app = build_merchant_systems_app(
            self.world, self._merchant_systems_token, time_scale=LIVE_TIME_SCALE, seed=self.seed
        )
        self._apps["merchant_systems"] = serve_app(app, "merchant_systems")

    def _start_sftp(self) -> None:
        # hook: the SFTP drop of the regional platforms (sandbox/sftp_server.py)
        if self.large or importlib.util.find_spec("sandbox.sftp_server") is None:
            return
        from sandbox.sftp_server import start_sftp

        self._sftp = start_sftp(self.world, self.home / "sandbox" / "sftp")

    def _drop_pos(self) -> None:
        # hook: the offline stores' POS import files (sandbox/exports.py) in the drop folder
        # the POS connector watches, ORDERPULSE_HOME/drop/pos
        if self.large or importlib.util.find_spec("sandbox.exports") is None:
            return
        from sandbox.exports import FORMATS, write_exports

        if "pos" in FORMATS:
            write_exports(self.world, self.home / "drop", channels=("pos",))
            self._pos = {"folder": str(self.home / "drop" / "pos")}

    def _publish_erp(self) -> None:
        # hook: the ERP / H5 mall database (sandbox/erp.py) on the warehouse's server
        if self.large or importlib.util.find_spec("sandbox.erp") is None:
            return
        from sandbox.erp import publish_erp

        admin_url = self.erp_admin_url or _default_admin_url(self.home)
        if admin_url is None:
            self._erp = {"error": "no PostgreSQL server to host the ERP database"}
            log.warning("sandbox ERP database skipped: no PostgreSQL server")
            return
        try:
            self._erp = publish_erp(self.world, admin_url)
        except Exception as err:  # the rest of the sandbox still serves
            self._erp = {"error": f"{type(err).__name__}: {err}"}
            log.warning("sandbox ERP database not published: %s", type(err).__name__)

    def _write_endpoints(self) -> None:
        channels = {
            c: {"base_url": self._apps[c].base_url, **g.credentials}
            for c, g in self.gateways.items()
        }
        oldest = min((o.created_at for o in self.world.orders), default=None)
        document = {
            "channels": channels,
            "merchant_systems": {
                "base_url": self._apps["merchant_systems"].base_url,
                "token": self._merchant_systems_token,
            },
            "sftp": self._sftp.info() if self._sftp is not None else {},
            "erp": self._erp,
            "pos": self._pos,
            "webhook_url": self.webhook_url,
            "robot": start_robot_receiver(self._apps),  # urgent alerts' group robot
            "generated": {
                "seed": self.seed,
                "orders": self.orders,
                "days": self.days,
                "end": self.world.end.isoformat(),
                "live": self.live,
                "calm": self.calm,
                "marketplaces_only": self.large,
                # how far back a first pull must reach (a world holds orders from before its
                # `days`: returning buyers' history); null for a streamed world
                "oldest_order": oldest.isoformat() if oldest else None,
            },
        }
        self._endpoints = document
        path = self.home / "sandbox.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, json.dumps(document, ensure_ascii=False, indent=2))

    def _write_truth(self) -> None:
        """`home/sandbox/truth.json`, written atomically (a reader never sees half a file)."""
        path = self.home / "sandbox" / "truth.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # streamed an order a line: the document as one string took ~1.3 GB more than the
        # sandbox held at 1,000,000 orders, its peak
        with tmp.open("w", encoding="utf-8") as out:
            out.write('{"orders": [')
            for i, row in enumerate(self._sorted_truth_rows()):
                out.write(("," if i else "") + "\n " + json.dumps(row, ensure_ascii=False))
            out.write("\n]")
            for key, value in self._truth_extras().items():
                out.write(
                    f",\n{json.dumps(key)}: {json.dumps(value, ensure_ascii=False, indent=1)}"
                )
            out.write("}\n")
        tmp.replace(path)

    # -- live mode and push ---------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tick_loop(self) -> None:
        rng = random.Random(f"live:{self.seed}")
        templates = list(self._templates)
        serial = 0
        last_s = epoch_s(datetime.now(UTC))
        while not self._stop.wait(self.live_interval):
            now = datetime.now(UTC)
            now_s = epoch_s(now)
            try:
                if self.live and templates:
                    fresh = []
                    for _ in range(LIVE_ORDERS_PER_TICK):
                        serial += 1
                        fresh.append(self._live_copy(rng.choice(templates), now, serial))
                    self._publish(fresh)
                if self._pusher is not None:
                    self._push_changes(last_s, now_s)
            except Exception:  # a bad tick must not end live mode
                log.exception("sandbox live tick failed")
            last_s = now_s

    def _live_copy(self, template: Order, now: datetime, serial: int) -> Order:
        """A new order shaped like `template`, created now, its lifecycle compressed."""

        def at(moment: datetime) -> datetime:
            return now + (moment - template.created_at) / LIVE_TIME_SCALE

        gateway = self.gateways[template.channel]
        number = order_number(template.channel, 900_000_000 + serial, now)
        while gateway.store.index_of(number) is not None:
            serial += 1_000_003
            number = order_number(template.channel, 900_000_000 + serial, now)
        return template.model_copy(
            update={
                "platform_order_no": number,
                "created_at": now,
                "paid_at": at(template.paid_at) if template.paid_at else None,
                "events": [e.model_copy(update={"at": at(e.at)}) for e in template.events],
                "labels": [x for x in template.labels if x in LIVE_KEPT_LABELS],
            }
        )

    def _publish(self, orders: Iterable[Order]) -> None:
        orders = list(orders)
        for channel, gateway in self.gateways.items():
            gateway.add_orders([o for o in orders if o.channel == channel])
        merchant = self._apps.get("merchant_systems")
        if merchant is not None and merchant.app is not None:  # the WMS may allocate them
            merchant.app.state.allocations.add_orders(orders)
        with self._lock:
            self._truth_rows.extend(o.truth() for o in orders)
        if not self.large:  # a million-row truth is rewritten once, at stop
            self._write_truth()

    def _push_changes(self, after_s: int, upto_s: int) -> None:
        assert self._pusher is not None
        for channel, gateway in self.gateways.items():
            states = []
            for i in gateway.store.changed_between(after_s, upto_s):
                state = gateway.state_at(i, upto_s)
                if state is not None and epoch_s(state.modified) > after_s:
                    states.append(state)
            if states:
                self._pusher.push_states(channel, states)


def run_sandbox_cli(
    home: Path,
    seed: int = 7,
    orders: int = 10_000,
    days: int = 3,
    scenario: Path | None = None,
    add: bool = False,
    live: bool = False,
    webhook_url: str | None = None,
    calm: bool = False,
    full_world: bool = False,
) -> None:
    """`orderpulse sandbox serve`: start everything, print where it is, block until Ctrl-C."""
    # A static world ends a few minutes ago, as the demo's: PDD serves only windows that end at
    # least 3 minutes before its clock, so a world ending now would hide its last orders.
    end = None if live else datetime.now(UTC).replace(second=0, microsecond=0) - STATIC_END_AGO
    sandbox = Sandbox(
        home,
        seed=seed,
        orders=orders,
        days=days,
        end=end,
        scenario=scenario,
        add=add,
        live=live,
        webhook_url=webhook_url,
        calm=calm,
        full_world=full_world,
    )
    sandbox.start()
    for error in sandbox.scenario_errors:
        print(f"scenario line rejected: {error}")
    endpoints = sandbox.endpoints
    for channel, entry in endpoints["channels"].items():
        print(f"{channel:<9} {entry['base_url']}")
    print(f"merchant systems {endpoints['merchant_systems']['base_url']}")
    if endpoints.get("sftp"):
        print(f"{'sftp':<9} sftp://{endpoints['sftp']['host']}:{endpoints['sftp']['port']}")
    published = len(sandbox.truth()["orders"])
    print(f"{published:,} orders published; credentials in {Path(home) / 'sandbox.json'}")
    print("live: producing new orders in real time" if live else "static world; Ctrl-C to stop")
    sandbox.serve_forever()


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (it holds secrets), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _carrier_names() -> dict[str, str]:
    try:
        from sandbox.catalog import CARRIERS
    except ImportError:
        return {}
    return dict(CARRIERS)


def _default_admin_url(home: Path) -> str | None:
    """The PostgreSQL server the ERP database lives on: the prepared process's warehouse
    server, else the home's configured or already-initialised embedded server."""
    url = os.environ.get("ORDERPULSE_WAREHOUSE_URL")
    if url:
        return url
    try:
        from kernel.database import warehouse
        from kernel.settings import Settings

        return warehouse(Settings(home=home)).url()
    except Exception:
        return None
