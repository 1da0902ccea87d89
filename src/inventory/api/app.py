"""The Litestar application factory: routes, errors, docs, metrics, and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from litestar import Controller, Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig
from litestar.response import Response
from litestar.types import ControllerRouterHandler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from inventory.api import projection_metrics
from inventory.api.alert_routes import AlertController
from inventory.api.audit_routes import AuditController
from inventory.api.auth import policy_middleware, security_middleware
from inventory.api.catalog_routes import CatalogController
from inventory.api.dashboard import dashboard_router
from inventory.api.docs import docs_router, openapi_config
from inventory.api.door import MAX_BODY_BYTES, door_middleware
from inventory.api.errors import handle_exception
from inventory.api.feed import feed
from inventory.api.health import HealthController
from inventory.api.history_routes import HistoryController
from inventory.api.identity import IdentityController
from inventory.api.import_routes import ImportController
from inventory.api.middleware import RequestMetrics, request_id_middleware
from inventory.api.report_routes import ReportController
from inventory.api.report_runs import ReportRunController
from inventory.api.stock_queries import StockQueryController
from inventory.api.stock_routes import StockCommandController
from inventory.api.user_routes import SessionController, UserAdminController
from inventory.api.webhook_routes import WebhookController
from inventory.feed.hub import FeedHub
from inventory.runtime import telemetry
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from inventory.security.context import Security
from inventory.security.socket_watch import SocketWatch
from inventory.service import CommandService


class MetricsController(Controller):
    """Prometheus text exposition of the default registry, the projection stalls read
    from the replica first."""

    path = "/metrics"
    include_in_schema = False

    @get()
    async def metrics(self, state: State) -> Response[bytes]:
        """The metrics, with the stalls as the replica has them now."""
        await projection_metrics.refresh(state.resources)
        return Response(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


class ApiServices(Protocol):
    """What the routes find on `app.state` (wiring.Services builds it)."""

    @property
    def resources(self) -> Resources: ...
    @property
    def service(self) -> CommandService: ...
    @property
    def security(self) -> Security: ...
    @property
    def feed_hub(self) -> FeedHub: ...
    @property
    def socket_watch(self) -> SocketWatch: ...
    @property
    def queue_report(self) -> Callable[[str], None]: ...


ServicesFactory = Callable[[Settings], AbstractAsyncContextManager[ApiServices]]

ROUTES: list[ControllerRouterHandler] = [
    HealthController,
    MetricsController,
    docs_router,
    IdentityController,
    SessionController,
    UserAdminController,
    CatalogController,
    StockCommandController,
    HistoryController,
    AuditController,
    ReportController,
    ReportRunController,
    StockQueryController,
    AlertController,
    WebhookController,
    ImportController,
    feed,
    dashboard_router,
]


def _install(state: State, services: ApiServices) -> None:
    """Put each shared service where the routes look for it."""
    state.resources = services.resources
    state.security = services.security
    state.service = services.service
    state.feed_hub = services.feed_hub
    state.socket_watch = services.socket_watch
    state.queue_report = services.queue_report


def _middleware() -> list[Middleware]:
    prometheus = PrometheusConfig(
        app_name="inventory",
        prefix="inventory",
        group_path=True,
        exclude=["/metrics", "/health", "/docs"],
        middleware_class=RequestMetrics,
    )
    # The door runs after authentication: an anonymous caller learns nothing of a route.
    # Each route's policy (role, store scope) is decided after the door's checks, by a
    # middleware rather than a Litestar guard: Litestar copies the handler per guard call.
    return [
        *_tracing(),
        request_id_middleware,
        prometheus.middleware,
        security_middleware,
        door_middleware,
        policy_middleware,
    ]


def _tracing() -> list[Middleware]:
    """A server span per request when tracing is on (runtime/telemetry.py), else nothing."""
    if not telemetry.active():
        return []
    from inventory.api.tracing import tracing_middleware  # noqa: PLC0415 - the otel extra

    return tracing_middleware()


def create_app(settings: Settings, services: ServicesFactory) -> Litestar:
    """Build the API; its lifespan opens `services(settings)` (wiring.build) and closes it."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with services(settings) as built:
            _install(app.state, built)
            yield

    return Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan],
        middleware=_middleware(),
        exception_handlers={Exception: handle_exception},
        request_max_body_size=MAX_BODY_BYTES,
        # Level 1, not Litestar's 9: JSON shrinks nearly as much, and the CPU spent per
        # stock page fell from 2.27 to 1.88 ms (bench/read_side.py, 64 readers).
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=1024, gzip_compress_level=1
        ),
        openapi_config=openapi_config(),
        logging_config=None,  # structlog owns logging (runtime/logging.py)
        debug=False,
    )
