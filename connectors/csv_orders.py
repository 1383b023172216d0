"""Order files (CSV or XLSX) from sources without an API: parse, validate, load into `raw`.

Reading:
- encoding: a UTF-8 BOM -> `utf-8-sig`; else strict UTF-8 -> `utf-8`; else GBK -> `gbk`; else
  GB18030 -> `gb18030`; else the file is unreadable. XLSX files report `xlsx`.
- CSV records by the `csv` module (quoted fields may hold commas, quotes and newlines); line
  numbers are physical lines of the file, the header being line 1 (a record spanning lines is
  reported by its first line). XLSX line numbers are sheet row numbers.
- headers map through the source's `file_format.columns` (config/channels.yaml) onto normalised
  keys; amounts accept `1,299.00`, `¥59.9`, `￥59.9`, `59.9元`; times are tried against
  `file_format.date_formats` (ISO 8601 with an offset always works) and, without an offset, are
  read in `file_format.timezone`. Validation is column-wise over the whole file (pandas).

Rejects: a row with the wrong number of fields, a blank required field, an unparsable amount,
quantity or time, a value outside the edge rules (`connectors.validation`: a negative or absurd
amount, a time before 2000 or in the future, oversize text), or a row of an order whose rows
disagree on an order-level amount (two rows of one receipt, different paid amounts) goes to
`raw.rejected_rows` with its line number, raw text and every problem it has. An order
is never loaded partially: the other rows of an order with a rejected row are rejected too
("order X has a rejected row (line N)"). A file that cannot be read at all (bytes, missing
required columns, a broken XLSX) fails as a whole with `FileUnreadable`.

Payload of one order in `raw.<channel>_orders` (items grouped by order number):
    every order-level column under its original header (values as in the file, first row),
    the normalised order keys present (ORDER_FIELDS of connectors.channels_config: amounts as
    decimal strings in yuan such as "1299.00", times as ISO 8601 with offset, blank = null),
    `goods_value` = sum of qty x price, `discount_amount` = shop + platform discount when not
    mapped, `items`: one object per row with the item-level and unmapped columns under their
    original headers plus `sku`, `title`, `qty` (int), `price` (decimal string),
    `_file`: the file's name.
The source's modified time is `modified_at` when mapped and given, else the file's mtime.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import psycopg

from connectors.channels_config import (
    AMOUNT_FIELDS,
    DATE_FIELDS,
    ITEM_FIELDS,
    ORDER_FIELDS,
    FileFormat,
)
from connectors.raw_loader import LoadStats, RawOrder, load_orders
from connectors.raw_schema import ensure_raw_tables, orders_table
from connectors.validation import (
    amount_problems,
    as_floats,
    qty_problems,
    text_problems,
    time_problems,
)

log = logging.getLogger(__name__)
CHUNK_ROWS = 10_000  # rows parsed and loaded at a time (whole orders)
_AMOUNT_NOISE = r"[¥￥,，\s]|元$"
_AMOUNT = r"[+-]?\d+(?:\.\d+)?"


class FileUnreadable(ValueError):
    """The file as a whole cannot be read; the message says why (no row of it was loaded)."""


@dataclass(frozen=True)
class Rejection:
    line_no: int | None
    reason: str
    raw_text: str


@dataclass
class ParsedFile:
    encoding: str
    rows: int  # data rows (blank lines not counted)
    orders: list[RawOrder]
    rejects: list[Rejection]
    # every order number the file names, loaded or rejected: a correction withdraws only
    # orders that are gone from the file, never ones whose rows were rejected this time
    order_nos: set[str] = field(default_factory=set)

    @property
    def rows_ok(self) -> int:
        return self.rows - len(self.rejects)


@dataclass
class FileLoadReport:
    """What loading one file did; `render()` (or str()) gives the printable report."""

    source: str
    file: str
    status: str = "loaded"  # loaded | unchanged | failed
    encoding: str | None = None
    rows: int = 0
    rows_rejected: int = 0
    orders: LoadStats = field(default_factory=LoadStats)
    withdrawn: int = 0
    rejects: list[Rejection] = field(default_factory=list)
    error: str | None = None

    @property
    def rows_loaded(self) -> int:
        return self.rows - self.rows_rejected if self.status == "loaded" else 0

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def as_metadata(self) -> dict:
        return {
            "file": self.file,
            "status": self.status,
            "encoding": self.encoding,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "orders": self.orders.as_dict(),
            "withdrawn": self.withdrawn,
            "error": self.error,
        }

    def render(self, max_reasons: int = 20) -> str:
        if self.status == "failed":
            return f"{self.source}: {self.file}: FAILED: {self.error}"
        if self.status == "unchanged":
            return f"{self.source}: {self.file}: unchanged since its last load, nothing to do"
        o = self.orders
        lines = [
            f"{self.source}: {self.file} ({self.encoding})",
            f"  rows loaded:   {self.rows_loaded}  -> orders: {o.inserted} new, "
            f"{o.updated} updated, {o.unchanged} unchanged"
            + (f", {self.withdrawn} withdrawn" if self.withdrawn else ""),
            f"  rows rejected: {self.rows_rejected}",
        ]
        for r in self.rejects[:max_reasons]:
            lines.append(f"    line {r.line_no}: {r.reason}")
        if len(self.rejects) > max_reasons:
            lines.append(f"    … {len(self.rejects) - max_reasons} more in raw.rejected_rows")
        return "\n".join(lines)

    __str__ = render

    def __rich__(self) -> str:
        from rich.markup import escape

        return escape(self.render())


# -- reading ------------------------------------------------------------------------------------
def detect_encoding(data: bytes) -> str:
    """`utf-8-sig`, `utf-8`, `gbk` or `gb18030`; FileUnreadable if none decodes the bytes."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    for codec in ("utf-8", "gbk", "gb18030"):
        if _decodes(data, codec):
            return codec
    raise FileUnreadable("not text in UTF-8, UTF-8 with BOM, GBK or GB18030")


def _decodes(data: bytes, codec: str, step: int = 1 << 20) -> bool:
    """Whether `data` is valid `codec` text, checked a megabyte at a time (no decoded copy)."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for start in range(0, len(view), step):
            decoder.decode(view[start : start + step])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@dataclass(slots=True)
class _Record:
    line_no: int
    fields: list[str]
    raw_text: str  # the record as the file has it (kept only while its chunk is parsed)
    error: str | None = None  # the csv module could not split this record


def _csv_stream(data: bytes, encoding: str, delimiter: str) -> Iterator[_Record]:
    """Every non-blank record of a CSV file, the header first, decoded while it is read."""
    try:
        text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    except LookupError as err:
        raise FileUnreadable(f"cannot decode as {encoding}: {err}") from err
    consumed: list[str] = []  # the physical lines of the record being read

    def lines() -> Iterator[str]:
        try:
            for line in text:
                if "\x00" in line:
                    raise FileUnreadable("contains NUL bytes: not a CSV text file")
                consumed.append(line)
                yield line
        except UnicodeDecodeError as err:
            raise FileUnreadable(f"cannot decode as {encoding}: {err}") from err

    reader = csv.reader(lines(), delimiter=delimiter)
    seen = 0
    while True:
        try:
            fields, error = next(reader), None
        except StopIteration:
            break
        except csv.Error as err:
            fields, error = [], str(err)
        start, seen = seen + 1, reader.line_num
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        if error is None and not "".join(fields).strip():
            continue  # blank line
        yield _Record(start, fields, raw, error)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# what openpyxl raises for a damaged workbook (bad zip, missing parts, broken XML)
_BROKEN_XLSX = (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, SyntaxError)


def _xlsx_stream(data: bytes, sheet: str | None) -> Iterator[_Record]:
    """Every non-empty row of the sheet as a record, the header first."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _BROKEN_XLSX as err:
        raise FileUnreadable(f"not a readable XLSX workbook: {err}") from err
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise FileUnreadable(f"no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        ws = book[sheet] if sheet else book.worksheets[0]
        width = None
        for row_no, row in enumerate(_sheet_rows(ws), start=1):
            fields = [_cell(v) for v in row]
            while fields and not fields[-1].strip():
                fields.pop()  # openpyxl pads rows to the sheet's widest row
            if not fields:
                continue
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(fields)
            if width is not None and len(fields) < width:
                fields += [""] * (width - len(fields))
            width = width or len(fields)
            yield _Record(row_no, fields, buf.getvalue())
    finally:
        book.close()


def _sheet_rows(ws) -> Iterator[tuple]:  # noqa: ANN001 - an openpyxl read-only sheet
    """The sheet's rows; broken sheet XML makes the file unreadable, not a crash."""
    try:
        yield from ws.iter_rows(values_only=True)
    except _BROKEN_XLSX as err:
        raise FileUnreadable(f"not a readable XLSX sheet: {err}") from err


def _is_xlsx(name: str, data: bytes) -> bool:
    return name.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04"


RecordSource = Callable[[], Iterator[_Record]]


def open_records(data: bytes, name: str, fmt: FileFormat) -> tuple[str, list[str], RecordSource]:
    """(encoding, header, records): the header is read and checked now; `records()` streams
    the data records from the start (each call anew)."""
    if _is_xlsx(name, data):
        encoding = "xlsx"

        def stream() -> Iterator[_Record]:
            return _xlsx_stream(data, fmt.sheet)
    else:
        encoding = fmt.encoding or detect_encoding(data)

        def stream() -> Iterator[_Record]:
            return _csv_stream(data, encoding, fmt.delimiter)

    first = stream()
    head = next(first, None)
    first.close()
    if head is None:
        raise FileUnreadable("empty sheet: no header row" if encoding == "xlsx"
                             else "empty file: no header line")  # fmt: skip
    header = [h.strip().lstrip("\ufeff") for h in head.fields]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileUnreadable(f"the header repeats {', '.join(dupes)}")
    needed = {*fmt.required, "platform_order_no"}
    missing = [f"{h} ({k})" for h, k in fmt.columns.items() if k in needed and h not in header]
    if missing:
        raise FileUnreadable(
            f"the header lacks required column(s) {', '.join(missing)}; found: {', '.join(header)}"
        )

    def records() -> Iterator[_Record]:
        rows = stream()
        next(rows)  # the header
        yield from rows

    return encoding, header, records


def _order_no(record: _Record, no_idx: int) -> str:
    return record.fields[no_idx].strip() if no_idx < len(record.fields) else ""


def _grouped(records: Iterator[_Record], no_idx: int) -> bool:
    """Whether every order's rows are next to each other (as exports write them): then the
    file can be parsed and loaded a chunk of whole orders at a time."""
    done: set[str] = set()
    current = None
    for r in records:
        no = _order_no(r, no_idx)
        if not no or no == current:
            continue
        if no in done:
            return False
        if current is not None:
            done.add(current)
        current = no
    return True


def _chunks(records: Iterator[_Record], no_idx: int, size: int) -> Iterator[list[_Record]]:
    """Lists of about `size` records, cut only where one order ends and the next begins."""
    chunk: list[_Record] = []
    last = None
    for r in records:
        no = _order_no(r, no_idx)
        if len(chunk) >= size and no and no != last:
            yield chunk
            chunk = []
        last = no or last
        chunk.append(r)
    if chunk:
        yield chunk


# -- column-wise parsing ------------------------------------------------------------------------
def parse_amounts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(normalised decimal strings, bad mask) for amounts like `1,299.00`, `¥59.9`, `59.9元`.
    Blank stays blank (not bad). Whole-column string ops only, no per-cell Python."""
    cleaned = values.str.replace(_AMOUNT_NOISE, "", regex=True)
    ok = cleaned.str.fullmatch(_AMOUNT).fillna(False).astype(bool)
    whole = (
        cleaned.str.replace(r"\..*$", "", regex=True)
        .str.replace(r"^\+", "", regex=True)
        .str.replace(r"^(-?)0+(\d)", r"\1\2", regex=True)
    )
    frac = cleaned.str.replace(r"^[^.]*\.?", "", regex=True).str.pad(2, side="right", fillchar="0")
    normal = (whole + "." + frac).where(ok, "")
    return normal, ~ok & (values != "")


def parse_times(
    values: pd.Series, formats: Sequence[str], timezone: str
) -> tuple[pd.Series, pd.Series]:
    """(ISO 8601 strings with offset, bad mask): each format tried over the whole column."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna() & (values != "")
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(values[todo], format=fmt, errors="coerce")
    local = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    todo = local.isna() & (values != "")
    if todo.any():  # ISO 8601 with an offset (or Z)
        iso = pd.to_datetime(values[todo], format="ISO8601", errors="coerce", utc=True)
        offset = values[todo].str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True)
        local[todo] = iso.where(offset).dt.tz_convert(timezone)
    return _iso(local), local.isna() & (values != "")


def _iso(local: pd.Series) -> pd.Series:
    """ISO 8601 text with the zone's offset (`strftime` is per cell and slow; this is not)."""
    wall = local.dt.tz_localize(None)
    minutes = (wall - local.dt.tz_convert("UTC").dt.tz_localize(None)) // pd.Timedelta(minutes=1)
    sign = pd.Series("+", index=local.index).where(minutes.fillna(0) >= 0, "-")
    hours = (minutes.abs() // 60).fillna(0).astype("int64").astype(str).str.zfill(2)
    mins = (minutes.abs() % 60).fillna(0).astype("int64").astype(str).str.zfill(2)
    text = wall.astype(str).str.replace(" ", "T", regex=False) + sign + hours + ":" + mins
    return text.where(local.notna(), "")


def _reason(current: pd.Series, bad: pd.Series, message: pd.Series | str) -> pd.Series:
    """`current` with `message` appended where `bad`: a row's reason names all its problems."""
    if isinstance(message, str):
        message = pd.Series(message, index=current.index, dtype="string")
    add = message.astype("string").where(bad.fillna(False).astype(bool))
    return (current + "; " + add).fillna(current).fillna(add)


def _add_problems(current: pd.Series, problems: pd.Series) -> pd.Series:
    return _reason(current, problems.notna(), problems)


def _conflicts(order_no: pd.Series, value: pd.Series, label: str) -> pd.Series:
    """Problems of rows whose order's rows disagree on an order-level value (blanks aside)."""
    orders = order_no.where(order_no != "")
    given = value.where(value != "")
    conflict = (given.groupby(orders).transform("nunique") > 1).fillna(False).astype(bool)
    out = pd.Series(None, index=value.index, dtype="object")
    if conflict.any():  # only the few conflicting orders list their values
        listed = (
            given[conflict]
            .groupby(orders[conflict])
            .transform(lambda s: ", ".join(dict.fromkeys(s.dropna())))
        )
        out[conflict] = "rows of order " + orders[conflict] + f" disagree on {label}: " + listed
    return out


def parse_orders(
    data: bytes,
    name: str,
    fmt: FileFormat,
    *,
    fallback_modified_at: datetime,
    now: datetime | None = None,
) -> ParsedFile:
    """Parse one whole order file into grouped orders and rejected rows (nothing is written);
    times after `now` (the wall clock by default) plus a small skew are rejected."""
    encoding, header, records = open_records(data, name, fmt)
    return _parse_records(
        encoding, header, list(records()), name, fmt, fallback_modified_at, now or datetime.now(UTC)
    )


def parse_chunks(
    data: bytes,
    name: str,
    fmt: FileFormat,
    *,
    fallback_modified_at: datetime,
    now: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[ParsedFile]:
    """`parse_orders` a chunk of about `chunk_rows` rows at a time (whole orders), so that a
    big file never sits in memory as Python objects at once. A file whose rows of one order
    are not next to each other is parsed whole (an order is never split). The header is
    checked before the first chunk is asked for: FileUnreadable comes early."""
    encoding, header, records = open_records(data, name, fmt)
    now = now or datetime.now(UTC)
    no_idx = header.index(fmt.header_of("platform_order_no"))
    size = chunk_rows if _grouped(records(), no_idx) else 2**62

    def parts() -> Iterator[ParsedFile]:
        for chunk in _chunks(records(), no_idx, size):
            yield _parse_records(encoding, header, chunk, name, fmt, fallback_modified_at, now)

    return parts()


def _parse_records(
    encoding: str,
    header: list[str],
    records: list[_Record],
    name: str,
    fmt: FileFormat,
    fallback_modified_at: datetime,
    now: datetime,
) -> ParsedFile:
    width = len(header)
    rejects: list[Rejection] = []
    good = [r for r in records if len(r.fields) == width]
    no_idx = header.index(fmt.header_of("platform_order_no"))
    bad_orders: dict[str, int] = {}
    for r in records:
        if len(r.fields) == width:
            continue
        if r.error is not None:
            rejects.append(Rejection(r.line_no, f"malformed CSV: {r.error}", r.raw_text))
            continue
        reason = f"wrong column count: {len(r.fields)} fields, the header has {width}"
        rejects.append(Rejection(r.line_no, reason, r.raw_text))
        if no_idx < len(r.fields) and r.fields[no_idx].strip():
            bad_orders.setdefault(r.fields[no_idx].strip(), r.line_no)

    df = pd.DataFrame([r.fields for r in good], columns=header, dtype="str")
    df = df.apply(lambda col: col.str.strip()) if len(df) else df
    line_nos = pd.Series([r.line_no for r in good], dtype="int64")

    present = {k: h for h, k in fmt.columns.items() if h in header}
    norm: dict[str, pd.Series] = {}
    reason = pd.Series(None, index=df.index, dtype="string")

    for key in fmt.required:
        h = present.get(key)
        if h is not None:
            reason = _reason(reason, df[h] == "", f"missing {h} ({key})")
    for key, h in present.items():
        col = df[h]
        if key in AMOUNT_FIELDS:
            norm[key], bad = parse_amounts(col)
            reason = _reason(reason, bad, f"unparsable amount in {h}: '" + col + "'")
            reason = _add_problems(reason, amount_problems(norm[key], f"{h} ({key})"))
        elif key in DATE_FIELDS:
            norm[key], bad = parse_times(col, fmt.date_formats, fmt.timezone)
            reason = _reason(reason, bad, f"unparsable date in {h}: '" + col + "'")
            reason = _add_problems(reason, time_problems(norm[key], f"{h} ({key})", now))
        elif key == "qty":
            ok = col.str.fullmatch(r"\+?\d+(?:\.0+)?") & (pd.to_numeric(col, errors="coerce") > 0)
            bad = ~ok.fillna(False).astype(bool) & (col != "")
            norm[key] = col
            qty = col.where(~bad, "")
            reason = _reason(reason, bad, f"unparsable quantity in {h}: '" + col + "'")
            reason = _add_problems(reason, qty_problems(col.where(~bad, ""), f"{h} ({key})"))
        else:
            norm[key] = col
    for h in df.columns:  # every cell, mapped or not, is text of bounded size
        reason = _add_problems(reason, text_problems(df[h], h))

    order_no = df[present["platform_order_no"]] if len(df) else pd.Series(dtype="str")
    if "qty" in norm and "price" in norm:  # the line's value must fit too
        line = as_floats(qty) * as_floats(norm["price"])
        shown = line.round(2).astype(str).where(line.notna(), "")
        label = f"{present['qty']} x {present['price']}"
        reason = _add_problems(reason, amount_problems(shown, label))
    for key in AMOUNT_FIELDS:
        if key in norm and key not in ITEM_FIELDS:
            reason = _add_problems(
                reason, _conflicts(order_no, norm[key], f"{present[key]} ({key})")
            )

    bad_rows = reason.notna()
    for no, line in zip(order_no[bad_rows], line_nos[bad_rows], strict=True):
        if no:
            bad_orders.setdefault(no, int(line))
    sibling = order_no.isin(list(bad_orders)) & ~bad_rows
    if sibling.any():
        first_bad = order_no[sibling].map(bad_orders).astype("int64").astype(str)
        msg = "order " + order_no[sibling] + " has a rejected row (line " + first_bad + ")"
        reason[sibling] = msg
    for i in reason[reason.notna()].index:
        rejects.append(Rejection(int(line_nos[i]), str(reason[i]), good[i].raw_text))
    rejects.sort(key=lambda r: r.line_no or 0)

    keep = reason.isna()
    orders = _group_orders(
        df[keep], {k: v[keep] for k, v in norm.items()}, present, name, fallback_modified_at
    )
    named = set(order_no[order_no != ""]) | set(bad_orders)
    return ParsedFile(encoding, len(records), orders, rejects, named)


def _rows(frame: pd.DataFrame, columns: list[str] | None) -> list[dict[str, str]]:
    names = list(frame.columns) if columns is None else columns
    values = [frame[c].to_numpy(dtype=object, na_value="") for c in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _group_orders(
    df: pd.DataFrame,
    norm: dict[str, pd.Series],
    present: dict[str, str],
    name: str,
    fallback_modified_at: datetime,
) -> list[RawOrder]:
    if df.empty:
        return []
    item_headers = [h for h in df.columns if h not in present.values()]  # unmapped: per row
    item_headers += [present[k] for k in ITEM_FIELDS if k in present]
    order_headers = [h for h in df.columns if h not in item_headers]
    order_keys = [k for k in ORDER_FIELDS if k in norm]
    item_keys = [k for k in ITEM_FIELDS if k in norm]
    fallback = fallback_modified_at.isoformat()
    modified = norm.get("modified_at", pd.Series("", index=df.index)).replace("", fallback)

    # plain Python rows, converted column-wise (per-cell access to pandas is the slow path)
    originals = _rows(df, list(df.columns))
    normals = _rows(pd.DataFrame({k: norm[k] for k in order_keys + item_keys}), None)
    mods = modified.to_numpy(dtype=object, na_value="")
    groups = df.groupby(norm["platform_order_no"], sort=False).indices
    out = []
    for no, idx in groups.items():
        first_orig, first_norm = originals[idx[0]], normals[idx[0]]
        payload: dict = {h: first_orig[h] for h in order_headers}
        payload.update({k: first_norm[k] or None for k in order_keys})
        items, goods = [], Decimal(0)
        for i in idx:
            item = {h: originals[i][h] for h in item_headers}
            item.update({k: normals[i][k] or None for k in item_keys})
            if "qty" in item:
                item["qty"] = int(Decimal(item["qty"])) if item["qty"] else None
            if item.get("qty") is not None and item.get("price"):
                goods += Decimal(item["price"]) * item["qty"]
            items.append(item)
        payload["items"] = items
        payload["goods_value"] = str(goods.quantize(Decimal("0.01")))
        if "discount_amount" not in payload and (
            "shop_discount" in payload or "platform_discount" in payload
        ):
            total = sum(
                Decimal(payload.get(k) or 0) for k in ("shop_discount", "platform_discount")
            )
            payload["discount_amount"] = str(total.quantize(Decimal("0.01")))
        payload["_file"] = name
        modified_at = max(datetime.fromisoformat(mods[i]) for i in idx)
        out.append(RawOrder(str(no), modified_at, payload))
    return out


# -- loading ------------------------------------------------------------------------------------
_REJECT_COPY = "copy raw.rejected_rows (source, file, line_no, raw_text, reason, run_id) from stdin"
_LOADED_FILE = """
insert into raw.loaded_files as f
    (source, path, size, mtime, content_hash, encoding, rows_loaded, rows_rejected, run_id,
     loaded_at)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
on conflict (source, path) do update
    set size = excluded.size, mtime = excluded.mtime, content_hash = excluded.content_hash,
        encoding = excluded.encoding, rows_loaded = excluded.rows_loaded,
        rows_rejected = excluded.rows_rejected, run_id = excluded.run_id, loaded_at = now()
"""


@dataclass(frozen=True)
class LoadedFile:
    """What raw.loaded_files remembers of a file's last loaded version."""

    path: str
    size: int
    mtime: datetime
    content_hash: str


def loaded_files(conn: psycopg.Connection, source: str) -> dict[str, LoadedFile]:
    with conn.transaction():
        rows = conn.execute(
            "select path, size, mtime, content_hash from raw.loaded_files where source = %s",
            [source],
        ).fetchall()
    return {r[0]: LoadedFile(*r) for r in rows}


def mark_unchanged(
    conn: psycopg.Connection, source: str, path: str, size: int, mtime: datetime
) -> None:
    """A re-sent file with known content: remember its new size/mtime, load nothing."""
    with conn.transaction():
        conn.execute(
            "update raw.loaded_files set size = %s, mtime = %s where source = %s and path = %s",
            [size, mtime, source, path],
        )


def store_file(
    conn: psycopg.Connection,
    parts: ParsedFile | Iterable[ParsedFile],
    *,
    source: str,
    channel: str,
    path: str,
    name: str,
    size: int,
    mtime: datetime,
    content_hash: str,
    run_id: str | None = None,
    replace_missing: bool = False,
    now: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FileLoadReport:
    """Write one parsed file (whole or in chunks) in one transaction: its rejects replace the
    previous version's, its orders upsert through the raw loader chunk by chunk, and with
    `replace_missing` the orders that came from this file's previous version and are gone from
    it are deleted. A chunk that fails to parse rolls the whole file back. `on_chunk` hears
    the rows read so far after each chunk (a progress display)."""
    report = FileLoadReport(source, path, "loaded")
    named: set[str] = set()
    rejected_orders = 0
    with conn.transaction():
        conn.execute(
            "delete from raw.rejected_rows where source = %s and file = %s", [source, path]
        )
        for parsed in [parts] if isinstance(parts, ParsedFile) else parts:
            report.encoding = parsed.encoding
            report.rows += parsed.rows
            report.rejects.extend(parsed.rejects)
            named |= parsed.order_nos
            with conn.cursor() as cur, cur.copy(_REJECT_COPY) as copy:
                for r in parsed.rejects:
                    copy.write_row((source, path, r.line_no, r.raw_text, r.reason, run_id))
            stats = load_orders(conn, channel, parsed.orders, run_id=run_id, file=path, now=now)
            report.orders += stats
            rejected_orders += stats.rejected  # orders the edge rules refused after parsing
            if on_chunk is not None:
                on_chunk(report.rows)
        report.rows_rejected = len(report.rejects) + rejected_orders
        if replace_missing:
            gone = conn.execute(
                f"delete from {orders_table(channel)} where channel = %s "
                "and payload ->> '_file' = %s and platform_order_no <> all(%s)",
                [channel, name, sorted(named)],
            )
            report.withdrawn = gone.rowcount
        conn.execute(
            _LOADED_FILE,
            [source, path, size, mtime, content_hash, report.encoding, report.rows_loaded,
             report.rows_rejected, run_id],
        )  # fmt: skip
    return report


def load_file_bytes(
    conn: psycopg.Connection,
    data: bytes,
    *,
    source: str,
    fmt: FileFormat,
    path: str,
    mtime: datetime,
    content_hash: str,
    channel: str | None = None,
    run_id: str | None = None,
    replace_missing: bool = False,
    now: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FileLoadReport:
    """Parse and store one file (times judged against `now`, the wall clock by default). A
    file that cannot be read returns a `failed` report (and writes nothing) so that the
    caller's other files still load."""
    channel = channel or source
    name = Path(path).name
    try:
        parts = parse_chunks(data, name, fmt, fallback_modified_at=mtime, now=now)
        ensure_raw_tables(conn, [channel])
        return store_file(
            conn, parts, source=source, channel=channel, path=path, name=name,
            size=len(data), mtime=mtime, content_hash=content_hash, run_id=run_id,
            replace_missing=replace_missing, now=now, on_chunk=on_chunk,
        )  # fmt: skip
    except FileUnreadable as err:
        return FileLoadReport(source, path, "failed", error=str(err))
    except psycopg.OperationalError:
        raise  # the database is gone: no other file could load either
    except Exception as err:  # noqa: BLE001 - one file's bug must not stop the files behind it
        log.exception("%s: loading %s failed", source, path)
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()  # store_file's own transaction rolled back; an outer one is dead
        error = f"the load failed: {type(err).__name__}: {err}"
        return FileLoadReport(source, path, "failed", error=error)


def rejected_rows(conn: psycopg.Connection, source: str, path: str | None = None) -> list[dict]:
    """The rejects currently recorded for `source` (optionally one file), by line."""
    sql = "select file, line_no, reason, raw_text from raw.rejected_rows where source = %s"
    args: list = [source]
    if path is not None:
        sql += " and file = %s"
        args.append(path)
    with conn.transaction():
        rows = conn.execute(sql + " order by file, line_no", args).fetchall()
    return [dict(zip(("file", "line_no", "reason", "raw_text"), r, strict=True)) for r in rows]
