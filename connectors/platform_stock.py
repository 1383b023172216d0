"""The marketplaces' stock APIs: read the stock each platform displays per SKU, push the units
OrderPulse's locks withhold (the freeze) and pause or lift a SKU's sale.

One class per platform, each on that platform's signed order client (`build_client`): the
same signing, token refresh and retries (`Http.call`: rate limits, 5xx and transport errors
retried with backoff, a platform's "ban lasts N s" honoured) as the order pulls. The method
names and shapes are the sandbox gateways' (see each `sandbox/gateways/<channel>.py`: "Stock";
⚠ modelled on each platform's style, not taken from its documentation).

Every client offers `read_stock()` -> `[{"sku", "sellable", "withheld", "paused"}]` (every SKU
the platform lists: units on sale, units frozen, sale paused), `set_withheld({sku: units})`
(absolute: a repeat is harmless) and `set_paused(skus, paused)`; writes go in batches of
`MAX_BATCH` SKUs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from connectors.http import Http, chunks
from connectors.marketplace import BaseClient, build_client

MAX_BATCH = 50  # SKUs per write call (every gateway's limit)
NOMORE = "nomore"  # Kuaishou's end of a cursor


class PlatformStockClient:
    """Stock calls of one platform on its signed order client (`BaseClient.call`)."""

    channel: ClassVar[str]
    page_size: ClassVar[int] = 100

    def __init__(self, client: BaseClient) -> None:
        self.client = client

    # -- what a platform provides -------------------------------------------------------------
    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """The platform's stock entries, one list per page."""
        raise NotImplementedError

    def parse(self, entry: dict[str, Any]) -> dict[str, Any]:
        """One entry as {"sku", "sellable", "withheld", "paused"}."""
        raise NotImplementedError

    def withhold_call(self, items: Mapping[str, int]) -> None:
        raise NotImplementedError

    def pause_call(self, skus: list[str], paused: bool) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def read_stock(self) -> list[dict[str, Any]]:
        """Every SKU the platform lists (a SKU on two pages is kept once)."""
        seen: dict[str, dict[str, Any]] = {}
        for page in self.pages():
            for entry in page:
                row = self.parse(entry)
                seen[row["sku"]] = row
        return list(seen.values())

    def set_withheld(self, items: Mapping[str, int]) -> int:
        """The units frozen per SKU become these; returns the calls made."""
        batches = list(chunks(sorted(items), MAX_BATCH))
        for skus in batches:
            self.withhold_call({s: int(items[s]) for s in skus})
        return len(batches)

    def set_paused(self, skus: Sequence[str], paused: bool) -> int:
        """Pause (True) or lift (False) these SKUs' sale; returns the calls made."""
        batches = list(chunks(sorted(set(skus)), MAX_BATCH))
        for batch in batches:
            self.pause_call(batch, paused)
        return len(batches)

    def numbered(
        self, fetch: Callable[[int], tuple[list[dict[str, Any]], int]], first: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages `first`, `first + 1`, ... of `fetch(page) -> (entries, total)` until the
        total is covered or a page comes back empty."""
        page, served = first, 0
        while True:
            entries, total = fetch(page)
            if not entries:
                return
            yield entries
            served += len(entries)
            if served >= total:
                return
            page += 1


def _row(sku: Any, sellable: Any, withheld: Any, paused: bool) -> dict[str, Any]:
    return {
        "sku": str(sku),
        "sellable": int(sellable),
        "withheld": int(withheld or 0),
        "paused": paused,
    }


class TaobaoStock(PlatformStockClient):
    channel = "taobao"

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.client.call(
                "taobao.items.inventory.get", {"page_no": page, "page_size": self.page_size}
            )
            items = (answer.get("items") or {}).get("item") or []
            return items, int(answer.get("total_results") or 0)

        return self.numbered(fetch, 1)

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(
            e["outer_id"],
            e["num"],
            e.get("with_hold_quantity"),
            e.get("approve_status") == "instock",
        )

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"outer_id": s, "with_hold_quantity": q} for s, q in items.items()]
        self.client.call("taobao.skus.withhold.update", {"sku_quantities": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        api = "taobao.item.update.delisting" if paused else "taobao.item.update.listing"
        self.client.call(api, {"outer_ids": ",".join(skus)})


class JdStock(PlatformStockClient):
    channel = "jd"

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.client.call(
                "jingdong.stock.read.findSkuStock", {"page": page, "pageSize": self.page_size}
            )
            result = answer.get("skuStockResult") or {}
            return result.get("skuStocks") or [], int(result.get("total") or 0)

        return self.numbered(fetch, 1)

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(e["outerId"], e["stockNum"], e.get("lockNum"), int(e.get("wareStatus", 8)) == 2)

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"outerId": s, "lockNum": q} for s, q in items.items()]
        self.client.call("jingdong.stock.write.lockSkuStock", {"skuStocks": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        self.client.call(
            "jingdong.ware.write.updateWareStatus",
            {"outerIds": skus, "wareStatus": 2 if paused else 8},
        )


class DouyinStock(PlatformStockClient):
    channel = "douyin"

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            data = self.client.call("sku.stockList", {"page": page, "size": self.page_size})
            return data.get("list") or [], int(data.get("total") or 0)

        return self.numbered(fetch, 0)  # doudian pages from 0

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(
            e["out_sku_id"],
            e["stock_num"],
            e.get("prehold_stock_num"),
            int(e.get("status", 0)) == 1,
        )

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"out_sku_id": s, "prehold_stock_num": q} for s, q in items.items()]
        self.client.call("sku.preholdStockBatch", {"sku_list": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        self.client.call(
            "product.editStatusBatch", {"out_sku_ids": skus, "status": 1 if paused else 0}
        )


class PddStock(PlatformStockClient):
    channel = "pdd"

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.client.call(
                "pdd.goods.sku.quantity.list.get", {"page": page, "page_size": self.page_size}
            )
            return answer.get("sku_list") or [], int(answer.get("total_count") or 0)

        return self.numbered(fetch, 1)

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(
            e["outer_id"], e["quantity"], e.get("reserve_quantity"), int(e.get("is_onsale", 1)) == 0
        )

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"outer_id": s, "reserve_quantity": q} for s, q in items.items()]
        self.client.call("pdd.goods.sku.reserve.update", {"sku_list": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        self.client.call(
            "pdd.goods.sale.status.set", {"outer_ids": skus, "is_onsale": 0 if paused else 1}
        )


class KuaishouStock(PlatformStockClient):
    channel = "kuaishou"
    page_size = 50

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        cursor = ""
        while True:
            data = self.client.call(
                "open.item.sku.stock.list", {"cursor": cursor, "pageSize": self.page_size}
            )
            entries = data.get("skuList") or []
            if entries:
                yield entries
            cursor = str(data.get("cursor") or NOMORE)
            if cursor == NOMORE or not entries:
                return

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(
            e["goodsCode"], e["stockNum"], e.get("withholdNum"), int(e.get("shelfStatus", 1)) == 0
        )

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"goodsCode": s, "withholdNum": q} for s, q in items.items()]
        self.client.call("open.item.sku.stock.withhold", {"skuList": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        self.client.call(
            "open.item.shelf.status.update", {"goodsCodes": skus, "shelfStatus": 0 if paused else 1}
        )


class YouzanStock(PlatformStockClient):
    channel = "youzan"

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            data = self.client.call(
                "youzan.item.sku.stock.list", {"page_no": page, "page_size": self.page_size}
            )
            return data.get("items") or [], int(data.get("total_results") or 0)

        return self.numbered(fetch, 1)

    def parse(self, e: dict[str, Any]) -> dict[str, Any]:
        return _row(
            e["outer_sku_id"],
            e["quantity"],
            e.get("withhold_quantity"),
            int(e.get("is_display", 1)) == 0,
        )

    def withhold_call(self, items: Mapping[str, int]) -> None:
        entries = [{"outer_sku_id": s, "withhold_quantity": q} for s, q in items.items()]
        self.client.call("youzan.item.sku.withhold.update", {"items": entries})

    def pause_call(self, skus: list[str], paused: bool) -> None:
        self.client.call(
            "youzan.item.display.update", {"outer_sku_ids": skus, "is_display": 0 if paused else 1}
        )


STOCK_CLIENTS: dict[str, type[PlatformStockClient]] = {
    cls.channel: cls
    for cls in (TaobaoStock, JdStock, DouyinStock, PddStock, KuaishouStock, YouzanStock)
}


def build_stock_client(channel: str, creds: Mapping[str, Any], http: Http) -> PlatformStockClient:
    """The stock client of marketplace `channel` on its signed order client and `http`."""
    if channel not in STOCK_CLIENTS:
        raise ValueError(
            f"no stock client for {channel!r}: the platforms with one are "
            f"{', '.join(STOCK_CLIENTS)}"
        )
    client = build_client(channel, creds, http)
    assert isinstance(client, BaseClient)
    return STOCK_CLIENTS[channel](client)
