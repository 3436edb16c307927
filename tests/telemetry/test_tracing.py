"""Spans of transactions and statements: the tree, kinds, attributes, no literals."""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.telemetry.conftest import Telemetry
from tests.telemetry.models import Gadget, GadgetRepo
from viveka_db import (
    DatabaseSessionFactory,
    Propagation,
    UnexpectedRollbackError,
    current_session,
    transactional,
)
from viveka_db.middleware.db_middleware import DbMiddleware
from viveka_db.telemetry import providers
from viveka_db.telemetry.providers import active_tracer

SECRET_NAME = "gizmo-Zq81x"  # a bound parameter value
SECRET_LITERAL = "lit-Wv27k"  # a literal written into text() SQL
SECRET_NUMBER = 7351  # a numeric literal written into text() SQL
SYSTEM = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mariadb"}

repo = GadgetRepo()


class GadgetService:
    @transactional
    async def stock(self, name: str) -> int:
        await repo.insert_all([Gadget(name=name, qty=3)])
        found = await repo.find_by_field("name", name)
        assert found is not None
        literal = text(
            f"SELECT count(*) FROM tel_gadgets WHERE name <> '{SECRET_LITERAL}' "
            f"AND qty < {SECRET_NUMBER}"
        )
        return int((await current_session().execute(literal)).scalar_one())

    @transactional
    async def broken(self) -> None:
        await current_session().execute(text("SELECT no_such_column FROM tel_gadgets"))

    @transactional
    async def fails(self) -> None:
        await repo.insert_all([Gadget(name="doomed", qty=1)])
        raise ValueError("business rule")

    @transactional
    async def swallows(self) -> None:
        await repo.insert_all([Gadget(name="outer", qty=1)])
        with contextlib.suppress(ValueError):
            await self.fails()

    @transactional(read_only=True)
    async def count(self) -> int:
        return int((await current_session().execute(select(Gadget.id))).all().__len__())

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def audit(self) -> None:
        await repo.insert_all([Gadget(name="audit", qty=0)])

    @transactional
    async def with_audit(self) -> None:
        await repo.find_by_field("name", "main")  # SQLite: REQUIRES_NEW may not write after us
        await self.audit()
        await repo.insert_all([Gadget(name="main", qty=0)])


service = GadgetService()


def statements_of(telemetry: Telemetry, parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in telemetry.children(parent) if s.kind is SpanKind.CLIENT]


def assert_no_values(span: ReadableSpan) -> None:
    query = str((span.attributes or {})["db.query.text"])
    for value in (SECRET_NAME, SECRET_LITERAL, str(SECRET_NUMBER)):
        assert value not in query, query


def assert_server_attributes(span: ReadableSpan, backend: str, url: str) -> None:
    attributes = span.attributes or {}
    assert attributes["db.system.name"] == SYSTEM[backend]
    parsed = make_url(url)
    assert attributes["db.namespace"] == parsed.database
    if backend == "sqlite":
        assert "server.address" not in attributes
    else:
        assert attributes["server.address"] == parsed.host
        assert attributes["server.port"] == parsed.port


async def test_span_tree_of_a_service_call(
    db: DatabaseSessionFactory, backend: str, backend_url: str, telemetry: Telemetry
) -> None:
    assert await service.stock(SECRET_NAME) == 1

    tx = telemetry.named("GadgetService.stock")
    assert tx.kind is SpanKind.INTERNAL
    assert tx.parent is None
    assert dict(tx.attributes or {}) == {
        "viveka_db.transaction.propagation": "REQUIRED",
        "viveka_db.transaction.read_only": False,
        "viveka_db.data_source": "default",
        "viveka_db.transaction.outcome": "committed",
        "viveka_db.transaction.retries": 0,
    }
    statements = statements_of(telemetry, tx)
    operations = [(s.attributes or {}).get("db.operation.name") for s in statements]
    assert operations[:1] == ["INSERT"]
    assert operations.count("SELECT") == 2
    for span in statements:
        assert span.context is not None and tx.context is not None
        assert span.context.trace_id == tx.context.trace_id
        assert_server_attributes(span, backend, backend_url)
        assert_no_values(span)
        attributes = span.attributes or {}
        if attributes.get("db.operation.name") in ("INSERT", "SELECT"):
            assert attributes["db.collection.name"] == "tel_gadgets"
            assert span.name == f"{attributes['db.operation.name']} tel_gadgets"
        assert attributes["viveka_db.engine.role"] == "primary"
        assert span.status.status_code is StatusCode.UNSET
    literal = next(s for s in statements if "count(*)" in str(s.attributes["db.query.text"]))
    assert (literal.attributes or {})["db.query.text"] == (
        "SELECT count(*) FROM tel_gadgets WHERE name <> ? AND qty < ?"
    )
    # nothing else was traced: every span is the transaction or one of its statements
    assert len(telemetry.spans()) == 1 + len(statements)


async def test_a_failed_statement_marks_its_span_and_the_transaction(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    with pytest.raises(Exception, match="no_such_column"):
        await service.broken()
    tx = telemetry.named("GadgetService.broken")
    (statement,) = statements_of(telemetry, tx)
    assert statement.status.status_code is StatusCode.ERROR
    assert (statement.attributes or {})["error.type"]
    assert tx.status.status_code is StatusCode.ERROR
    assert (tx.attributes or {})["viveka_db.transaction.outcome"] == "rolled_back"


async def test_outcomes_rolled_back_and_rollback_only(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    with pytest.raises(ValueError):
        await service.fails()
    with pytest.raises(UnexpectedRollbackError):
        await service.swallows()
    failed = telemetry.named("GadgetService.fails")
    assert (failed.attributes or {})["viveka_db.transaction.outcome"] == "rolled_back"
    assert (failed.attributes or {})["error.type"] == "ValueError"
    swallowed = telemetry.named("GadgetService.swallows")
    assert (swallowed.attributes or {})["viveka_db.transaction.outcome"] == "rollback_only"
    assert swallowed.status.status_code is StatusCode.ERROR
    outcomes = {
        point.attributes["viveka_db.transaction.outcome"]: point.value
        for point in telemetry.points("viveka_db.transactions")
    }
    assert outcomes == {"rolled_back": 1, "rollback_only": 1}


async def test_requires_new_nests_under_the_suspended_transaction(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    await service.with_audit()
    outer = telemetry.named("GadgetService.with_audit")
    inner = telemetry.named("GadgetService.audit")
    assert inner.parent is not None and outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    assert (inner.attributes or {})["viveka_db.transaction.propagation"] == "REQUIRES_NEW"
    assert [s.name for s in statements_of(telemetry, inner)] == ["INSERT tel_gadgets"]


async def test_read_engine_statements(
    db: DatabaseSessionFactory, backend: str, backend_url: str, telemetry: Telemetry
) -> None:
    assert db.read_engine is not db.engine  # file SQLite, PostgreSQL, MariaDB: a pool of its own
    await service.count()
    tx = telemetry.named("GadgetService.count")
    assert (tx.attributes or {})["viveka_db.transaction.read_only"] is True
    (statement,) = statements_of(telemetry, tx)
    assert (statement.attributes or {})["viveka_db.engine.role"] == "read"
    assert_server_attributes(statement, backend, backend_url)


@transactional(data_source="tel_reports")
async def report_count() -> int:
    result = await current_session("tel_reports").execute(text("SELECT count(*) FROM tel_gadgets"))
    return int(result.scalar_one())


async def test_named_data_source_statements(
    db: DatabaseSessionFactory, backend: str, backend_url: str, telemetry: Telemetry
) -> None:
    reports = DatabaseSessionFactory({"database": {"url": backend_url}}, data_source="tel_reports")
    try:
        assert await report_count() == 0
    finally:
        await reports.dispose()
    tx = telemetry.named("report_count")
    assert (tx.attributes or {})["viveka_db.data_source"] == "tel_reports"
    (statement,) = statements_of(telemetry, tx)
    assert (statement.attributes or {})["viveka_db.data_source"] == "tel_reports"
    assert_server_attributes(statement, backend, backend_url)


Scope = MutableMapping[str, Any]


class RequestSpanMiddleware:
    """Stands in for the application's HTTP server instrumentation: a SERVER span per request."""

    def __init__(self, app: Any, telemetry: Telemetry) -> None:
        self.app = app
        self.tracer = telemetry.tracer_provider.get_tracer("test.http")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        name = f"HTTP {scope.get('method')}"
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            await self.app(scope, receive, send)


def traced_app(telemetry: Telemetry) -> Any:
    async def show(request: Request) -> JSONResponse:
        count = await service.stock(str(request.path_params["name"]))
        return JSONResponse({"count": count})

    async def crash(request: Request) -> JSONResponse:
        await repo.insert_all([Gadget(name="crash", qty=1)])
        return JSONResponse({"error": "no"}, status_code=500)

    app = Starlette(
        routes=[
            Route("/gadgets/{name}", show, methods=["POST"]),
            Route("/crash", crash, methods=["POST"]),
        ]
    )
    app.add_middleware(DbMiddleware)
    return RequestSpanMiddleware(app, telemetry)


async def test_span_tree_of_a_request(
    db: DatabaseSessionFactory, backend: str, backend_url: str, telemetry: Telemetry
) -> None:
    transport = httpx.ASGITransport(app=traced_app(telemetry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(f"/gadgets/{SECRET_NAME}")
    assert response.status_code == 200

    request = telemetry.named("HTTP POST")
    tx = telemetry.named("POST /gadgets/{name}")
    joined = [s for s in telemetry.spans() if s.name == "GadgetService.stock"]
    assert joined == []  # the service joined the request's transaction: no span of its own
    assert tx.kind is SpanKind.INTERNAL
    assert tx.parent is not None and request.context is not None
    assert tx.parent.span_id == request.context.span_id
    attributes = tx.attributes or {}
    assert attributes["viveka_db.transaction.outcome"] == "committed"
    assert attributes["http.route"] == "/gadgets/{name}"
    assert attributes["http.request.method"] == "POST"
    statements = statements_of(telemetry, tx)
    assert [s.attributes["db.operation.name"] for s in statements if s.attributes] == [
        "INSERT",
        "SELECT",
        "SELECT",
    ]
    for span in statements:
        assert_no_values(span)
        assert_server_attributes(span, backend, backend_url)
    assert SECRET_NAME not in str([s.name for s in telemetry.spans()])


async def test_a_request_answered_with_500_is_rolled_back(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    transport = httpx.ASGITransport(app=traced_app(telemetry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/crash")
    assert response.status_code == 500
    tx = telemetry.named("POST /crash")
    assert (tx.attributes or {})["viveka_db.transaction.outcome"] == "rolled_back"
    assert [s.name for s in statements_of(telemetry, tx)] == ["INSERT tel_gadgets"]


async def test_without_an_sdk_nothing_is_traced(db: DatabaseSessionFactory) -> None:
    # no providers handed over and no global SDK provider installed in this process
    assert active_tracer() is None
    assert await service.stock("plain") == 1


async def test_without_the_api_nothing_is_traced(
    db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch, telemetry: Telemetry
) -> None:
    monkeypatch.setattr(providers, "OTEL_AVAILABLE", False)
    monkeypatch.setattr(providers, "_global_tracer_provider", None)
    providers.set_providers()
    assert active_tracer() is None
    assert await service.stock("plain") == 1
    assert telemetry.spans() == []


@transactional
async def stock_many(count: int) -> None:
    await repo.insert_all([Gadget(name=f"bulk-{i}", qty=i) for i in range(count)])


async def test_bulk_fast_paths_are_traced(
    db: DatabaseSessionFactory, backend: str, backend_url: str, telemetry: Telemetry
) -> None:
    await stock_many(600)  # PostgreSQL: COPY; MariaDB: multi-row INSERT on the driver
    tx = telemetry.named("stock_many")
    statements = statements_of(telemetry, tx)
    assert statements, [s.name for s in telemetry.spans()]
    written = [s for s in statements if s.name.endswith("tel_gadgets")]
    assert written, [s.name for s in statements]
    for span in written:
        assert_server_attributes(span, backend, backend_url)
        assert "bulk-1" not in str(span.attributes)
    if backend == "postgresql":  # asyncpg and psycopg alike
        (copy,) = written
        assert copy.name == "COPY tel_gadgets"
        assert (copy.attributes or {})["db.operation.name"] == "COPY"
    if backend == "mariadb":
        assert {s.name for s in written} == {"INSERT tel_gadgets"}
        assert "VALUES (?, ?)" in str((written[0].attributes or {})["db.query.text"])
