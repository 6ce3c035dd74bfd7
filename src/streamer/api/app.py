"""The HTTP API: settings with live state, start/stop, health, metrics, trades over websocket."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.trustedhost import TrustedHostMiddleware

from streamer import __version__
from streamer.api.docs import serve_docs
from streamer.api.live import LiveFeed
from streamer.api.metrics import SocketClients, metrics_registry, render_metrics
from streamer.api.models import (
    BulkResponse,
    Cluster,
    ClusterInstance,
    Health,
    Problem,
    StartResponse,
    StopResponse,
    SymbolState,
    Tree,
)
from streamer.api.page import mount_page
from streamer.api.security import MutationGuard, allowed_hosts
from streamer.api.trades import trades_socket
from streamer.db import DatabaseError, Status, UnknownSymbol
from streamer.errors import StreamingUnavailable
from streamer.otp import StartError
from streamer.stream.stats import LiveState
from streamer.symbols import InvalidSymbol

if TYPE_CHECKING:
    from streamer.api.view import ServiceView

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "the symbol is not in the settings"},
    422: {"model": Problem, "description": "the symbol is malformed"},
    503: {"model": Problem, "description": "the database cannot be reached"},
}


def create_app(service: ServiceView, ready: Callable[[], None] | None = None) -> FastAPI:
    """Build the API over a running service; `ready` is called once it can serve requests."""

    live = LiveFeed(service)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ready is not None:
            ready()
        try:
            yield
        finally:
            await live.close()

    app = FastAPI(
        title="streamer",
        version=__version__,
        summary="Live Binance trade streams for a persisted set of symbols.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    serve_docs(app)
    hosts = allowed_hosts(service.config.host, service.config.allowed_hosts)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    guard = MutationGuard(service.token)
    clients = SocketClients()
    registry = metrics_registry(service, clients)
    mutating = [Depends(guard)]

    @app.exception_handler(InvalidSymbol)
    async def invalid_symbol(_: Request, error: InvalidSymbol) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(UnknownSymbol)
    async def unknown_symbol(_: Request, error: UnknownSymbol) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(DatabaseError)
    async def database_down(_: Request, error: DatabaseError) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {error}"}, status_code=503)

    @app.exception_handler(StreamingUnavailable)
    async def restarting(_: Request, error: StreamingUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"retry-after": "1"})

    @app.exception_handler(StartError)
    async def start_failed(_: Request, error: StartError) -> JSONResponse:
        return JSONResponse({"detail": f"worker failed to start: {error}"}, status_code=500)

    @app.get("/api/settings", responses=ERRORS)
    async def list_settings(
        status: Status | None = None,
        prefix: str | None = None,
        active: Annotated[
            bool, Query(description="only symbols that are on or have a running worker")
        ] = False,
    ) -> list[SymbolState]:
        """Every setting with its worker's live state."""
        states = await service.symbol_states(status=status, prefix=prefix)
        if active:
            states = [
                s for s in states if s.status is Status.ON or s.state is not LiveState.STOPPED
            ]
        return states

    @app.get("/api/settings/{symbol}", responses=ERRORS)
    async def get_setting(symbol: str) -> SymbolState:
        """One symbol's setting and live state."""
        return await service.symbol_state(symbol)

    @app.post("/api/settings/start", dependencies=mutating, responses=ERRORS)
    async def start_many(symbols: Annotated[list[str], Body(max_length=10_000)]) -> BulkResponse:
        """Start many symbols in one call; all are checked first, so one bad symbol changes
        nothing."""
        result = await service.streaming.start_many(symbols)
        return BulkResponse(**dataclasses.asdict(result))

    @app.post("/api/settings/stop", dependencies=mutating, responses=ERRORS)
    async def stop_many(symbols: Annotated[list[str], Body(max_length=10_000)]) -> BulkResponse:
        """Stop many symbols in one call; all are checked first."""
        result = await service.streaming.stop_many(symbols)
        return BulkResponse(**dataclasses.asdict(result))

    @app.post("/api/settings/{symbol}/start", dependencies=mutating, responses=ERRORS)
    async def start(symbol: str) -> StartResponse:
        """Persist `on` and start the symbol's worker (returns the running one if any)."""
        result = await service.streaming.start_streaming(symbol)
        return StartResponse(symbol=result.symbol, already_running=result.already_running)

    @app.post("/api/settings/{symbol}/stop", dependencies=mutating, responses=ERRORS)
    async def stop(symbol: str) -> StopResponse:
        """Persist `off` and terminate the symbol's worker if one runs."""
        result = await service.streaming.stop_streaming(symbol)
        return StopResponse(symbol=result.symbol, was_running=result.was_running)

    @app.get("/api/cluster", responses=ERRORS)
    async def cluster() -> Cluster:
        """The instances sharing the settings database and the symbols each streams now."""
        found = await service.cluster()
        return Cluster(
            instances=[
                ClusterInstance(
                    id=i.id,
                    address=i.address,
                    started=i.started,
                    last_seen=i.last_seen,
                    symbols=i.symbols,
                )
                for i in found
            ]
        )

    @app.get("/api/tree")
    async def tree() -> Tree:
        """The supervision tree: every supervisor and worker, its state and restarts."""
        return Tree(tree=service.root.describe())

    @app.get("/api/health", responses={503: {"model": Health}})
    async def health() -> Response:
        """Liveness (the process answers) and readiness (database reached, streaming supervised)."""
        report = service.health()
        return JSONResponse(report.model_dump(), status_code=200 if report.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(render_metrics(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_websocket_route("/ws/trades", trades_socket(service, clients))
    app.add_api_websocket_route("/ws/live", live.endpoint())
    mount_page(app)
    return app
