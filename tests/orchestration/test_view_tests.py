"""The fingerprint that decides whether a build may leave a dbt view's data tests out: it
changes with anything those tests' outcome depends on in the project, and only with that."""

from __future__ import annotations

import copy

import dagster as dg

from orchestration.dbt.view_tests import view_tests


def _manifest() -> dict:
    """A view `report` with a test, reading the view `base` (no test of its own), which reads a
    table; the test's macro calls another macro."""

    def model(name: str, materialized: str, parents: list[str], sql: str) -> dict:
        return {
            "resource_type": "model", "name": name, "schema": "marts",
            "config": {"materialized": materialized}, "checksum": {"checksum": sql},
            "depends_on": {"nodes": parents, "macros": []},
        }  # fmt: skip

    return {
        "nodes": {
            "model.p.table": model("table", "table", [], "t1"),
            "model.p.base": model("base", "view", ["model.p.table"], "b1"),
            "model.p.report": model("report", "view", ["model.p.base"], "r1"),
            "test.p.unique_report_day": {
                "resource_type": "test", "name": "unique_report_day", "raw_code": None,
                "test_metadata": {"name": "unique", "kwargs": {"column_name": "day"}},
                "config": {"severity": "ERROR"},
                "depends_on": {"nodes": ["model.p.report"], "macros": ["macro.p.test_unique"]},
            },
            "test.p.pair": {  # two parents: not the view's own, always run
                "resource_type": "test", "name": "pair", "raw_code": "select 1",
                "config": {}, "depends_on": {"nodes": ["model.p.report", "model.p.table"],
                                             "macros": []},
            },
        },
        "macros": {
            "macro.p.test_unique": {"macro_sql": "u1", "depends_on": {"macros": ["macro.p.w"]}},
            "macro.p.w": {"macro_sql": "w1", "depends_on": {"macros": []}},
        },
    }  # fmt: skip


REPORT = dg.AssetKey(["marts", "report"])


def _print(manifest: dict) -> str:
    return view_tests(manifest)[REPORT].fingerprint


def test_only_views_with_tests_of_their_own_are_listed_and_always_tested_ones_are_not() -> None:
    found = view_tests(_manifest())
    assert set(found) == {REPORT}
    assert found[REPORT].tests == ("unique_report_day",)
    assert view_tests(_manifest(), always=[REPORT]) == {}


def test_the_fingerprint_follows_what_the_tests_depend_on() -> None:
    before = _print(_manifest())
    assert _print(_manifest()) == before  # stable

    def changed(path: list, value: object) -> str:
        manifest = copy.deepcopy(_manifest())
        target = manifest
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return _print(manifest)

    nodes, macros = "nodes", "macros"
    # the view's SQL, its config, a view it reads, its test's arguments, a macro the test
    # calls indirectly: each makes the tests run again
    assert changed([nodes, "model.p.report", "checksum", "checksum"], "r2") != before
    assert changed([nodes, "model.p.report", "config", "alias"], "report_v2") != before
    assert changed([nodes, "model.p.base", "checksum", "checksum"], "b2") != before
    kwargs = {"column_name": "week"}
    assert changed([nodes, "test.p.unique_report_day", "test_metadata", "kwargs"], kwargs) != before
    assert changed([macros, "macro.p.w", "macro_sql"], "w2") != before
    # a table's SQL is not part of it: the view reads its rows, which its own tests check
    assert changed([nodes, "model.p.table", "checksum", "checksum"], "t2") == before
