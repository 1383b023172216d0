"""Which dbt views' data tests a run may leave out: those whose every check passed on the same
code.

A view stores nothing: its data tests compute it over every order, each time (the BI views'
took 15-18 s of test time in every 10,000-order cycle at 1,000,000 orders). Live mode already
rebuilds and tests a view only when its SQL changes (`built_when_its_code_changes()`); a run
of the whole graph now does the same for the tests: a view's tests run when the view's code,
its tests' code, a macro either uses or a view it reads changed since they last all passed
in this warehouse, and after any failure; the nightly `dbt_full_data_tests` job
(`test_all_rows`) runs every one of them. What passed is kept per warehouse in
`intermediate.view_tests_passed` (created by the project's on-run-start), keyed by the view's
fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import psycopg

REGISTER = "intermediate.view_tests_passed"


@dataclass(frozen=True)
class ViewTests:
    """A view's data tests (their dbt names) and the fingerprint of everything they check."""

    fingerprint: str
    tests: tuple[str, ...]


def _macro_closure(manifest: Mapping[str, Any], roots: Iterable[str]) -> list[str]:
    """The SQL of the macros `roots` name and of every macro they call, in a stable order."""
    macros = manifest["macros"]
    seen: set[str] = set()
    stack = [m for m in roots if m in macros]
    while stack:
        uid = stack.pop()
        if uid not in seen:
            seen.add(uid)
            stack.extend(m for m in macros[uid]["depends_on"]["macros"] if m in macros)
    return [macros[uid]["macro_sql"] for uid in sorted(seen)]


def view_tests(
    manifest: Mapping[str, Any], always: Iterable[dg.AssetKey] = ()
) -> dict[dg.AssetKey, ViewTests]:
    """Asset key of every dbt view with data tests of its own (tests on that view alone) ->
    its tests and fingerprint: the view's SQL and config, its tests' definitions, the macros
    both use, and the fingerprints of the views it reads. The views `always` names (tested
    on every build) are left out."""
    nodes = manifest["nodes"]
    always = set(always)
    views = {
        uid: node
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "view"
    }
    tests: dict[str, list[dict]] = {uid: [] for uid in views}
    for node in nodes.values():
        parents = node["depends_on"]["nodes"] if node["resource_type"] == "test" else []
        if len(parents) == 1 and parents[0] in views:
            tests[parents[0]].append(node)
    prints: dict[str, str] = {}

    def fingerprint(uid: str) -> str:
        if uid not in prints:
            view = views[uid]
            own = [
                view["checksum"]["checksum"],
                json.dumps(view["config"], sort_keys=True, default=str),
                _macro_closure(manifest, view["depends_on"]["macros"]),
                [fingerprint(p) for p in sorted(view["depends_on"]["nodes"]) if p in views],
                sorted(
                    json.dumps(
                        [
                            t["name"],
                            t.get("raw_code"),
                            t.get("test_metadata"),
                            t["config"],
                            _macro_closure(manifest, t["depends_on"]["macros"]),
                        ],
                        sort_keys=True,
                        default=str,
                    )  # fmt: skip
                    for t in tests[uid]
                ),
            ]
            digest = hashlib.sha256(json.dumps(own, sort_keys=True).encode())
            prints[uid] = digest.hexdigest()
        return prints[uid]

    return {
        dg.AssetKey([view["schema"], view["name"]]): ViewTests(
            fingerprint(uid), tuple(sorted(t["name"] for t in tests[uid]))
        )
        for uid, view in views.items()
        if tests[uid] and dg.AssetKey([view["schema"], view["name"]]) not in always
    }


def tests_to_leave_out(
    conn: psycopg.Connection,
    views: Mapping[dg.AssetKey, ViewTests],
    selected: Iterable[dg.AssetKey],
) -> list[str]:
    """The data tests of the selected views whose fingerprint is the one recorded when all
    their tests last passed here (none before the register exists)."""
    if conn.execute("select to_regclass(%s)", [REGISTER]).fetchone()[0] is None:
        return []
    passed = dict(conn.execute(f"select view_key, fingerprint from {REGISTER}").fetchall())
    return sorted(
        name
        for key in selected
        if key in views and passed.get(key.to_user_string()) == views[key].fingerprint
        for name in views[key].tests
    )


def record_passed(
    conn: psycopg.Connection,
    views: Mapping[dg.AssetKey, ViewTests],
    results: Mapping[tuple[dg.AssetKey, str], bool],
) -> list[dg.AssetKey]:
    """Record the views whose every data test ran in this run and passed (`results`: (asset
    key, check name) -> passed), and forget those with a test that failed (the next build
    tests them again); returns the recorded."""
    done = [
        key
        for key, view in views.items()
        if all(results.get((key, name)) is True for name in view.tests)
    ]
    failed = [
        key.to_user_string()
        for key, view in views.items()
        if any(results.get((key, name)) is False for name in view.tests)
    ]
    if failed:
        conn.execute(f"delete from {REGISTER} where view_key = any(%s)", [failed])
    if done:
        conn.execute(
            f"insert into {REGISTER} (view_key, fingerprint, passed_at) "
            "select key, fingerprint, now() from unnest(%s::text[], %s::text[]) "
            "as passed (key, fingerprint) "
            "on conflict (view_key) do update "
            "set fingerprint = excluded.fingerprint, passed_at = excluded.passed_at",
            [[k.to_user_string() for k in done], [views[k].fingerprint for k in done]],
        )
    return done
