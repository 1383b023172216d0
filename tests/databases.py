"""Scratch databases on the session's PostgreSQL server, for tests that need isolation."""

from __future__ import annotations

import uuid

import psycopg

from kernel.database import SCHEMAS, PgConn


def new_database(pg: PgConn, prefix: str = "t_", *, schemas: bool = True) -> PgConn:
    """A brand-new database beside `pg`'s, with the warehouse schemas unless told not to."""
    name = prefix + uuid.uuid4().hex[:10]
    with psycopg.connect(pg.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    conn = PgConn(pg.host, pg.port, pg.user, pg.password, name)
    if schemas:
        with psycopg.connect(conn.url(), autocommit=True) as db:
            for schema in SCHEMAS:
                db.execute(f"create schema {schema}")
    return conn


def drop_database(pg: PgConn, conn: PgConn) -> None:
    with psycopg.connect(pg.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{conn.dbname}" with (force)')
