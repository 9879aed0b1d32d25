"""The whole server: relay, pools and fronts, started and stopped in order.

Start-up: the RPC listener (``[rpc]``; first, so PHP code can call it
while it boots), the relay listener (socket relays only), then every pool
in parallel (all workers handshaken), then the services (metrics, status),
then the fronts bind their sockets; only then is the server ready. A
worker that cannot start fails start-up with its own output.

Shutdown (``stop``) runs the other way: fronts stop accepting and let
in-flight requests finish within ``endure.grace_period``, then pools stop their
workers (stop frame, then SIGKILL after ``destroy_timeout``), and the RPC
listener closes last, so workers can log through it until the end. Cancelling
``run`` instead kills everything at once, still reaping every process.
"""

from __future__ import annotations

import logging
import ssl

import attrs
import trio

from trio_runner.config.model import Config, HttpConfig, RpcConfig
from trio_runner.errors import (
    BindError,
    ConfigError,
    TrioRunnerError,
    WorkerStartError,
)
from trio_runner.http import HttpBridge
from trio_runner.http.asgi import ASGIApp
from trio_runner.http.front import plain_server, tls_server, uses_lean_server
from trio_runner.http.middleware import build_app
from trio_runner.http.tls import HttpsRedirect, server_context
from trio_runner.metrics import MetricsService, RequestMetrics
from trio_runner.pool import Pool
from trio_runner.process import ProcessSpawner, open_relay, worker_environment
from trio_runner.process.relay import PipeRelay, SocketRelay
from trio_runner.reload import watch_for_reload
from trio_runner.rpc import (
    AppLogger,
    Informer,
    Resetter,
    RpcInfo,
    RpcServer,
    RpcService,
)
from trio_runner.rpc import MetricsService as RpcMetrics
from trio_runner.rpc import StatusService as RpcStatus
from trio_runner.status import StatusService

__all__ = ["Server"]

# What the fronts get past endure.grace_period to answer the requests it
# ended (503) before they cut what is left.
_ANSWER_TIME = 1.0

logger = logging.getLogger(__name__)


@attrs.define(eq=False)
class Server:
    """A configured server. ``await nursery.start(server.run)`` starts it.

    Attributes:
        config: what to run.
        pools: the pools by name, once started.
        http_address: the bound ``host:port`` of the HTTP front, once started
            (with the real port when the config asked for port 0).
        https_address: the same for HTTPS (``[http.ssl]``), if configured.
        metrics: the metrics service (``[metrics]``), once started; its
            ``app`` is the sink of the ``metrics.*`` RPC methods.
        status: the status service (``[status]``), once started; its
            ``status`` and ``ready`` answer the ``status.*`` RPC methods.
        rpc_address: where the RPC service listens (``[rpc]``), once started.
        rpc_services: RPC services served besides the built-in informer,
            resetter, ``rpc.*`` and app logger, e.g. ``metrics.*`` and
            ``status.*`` (``rpc.MetricsService``, ``rpc.StatusService``).
    """

    config: Config
    pools: dict[str, Pool] = attrs.field(factory=dict)
    http_address: str | None = None
    https_address: str | None = None
    metrics: MetricsService | None = None
    status: StatusService | None = None
    rpc_address: str | None = None
    rpc_services: list[RpcService] = attrs.field(factory=list)
    _stopping: trio.Event = attrs.field(factory=trio.Event)
    _bridges: list[HttpBridge] = attrs.field(factory=list)
    _tls: ssl.SSLContext | None = None
    _started: bool = False

    @property
    def http_url(self) -> str | None:
        if self.http_address is None:
            return None
        return f"http://{self.http_address}"

    @property
    def https_url(self) -> str | None:
        if self.https_address is None:
            return None
        return f"https://{self.https_address}"

    @property
    def started(self) -> bool:
        return self._started

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Begin a graceful stop; ``run`` returns when it is done."""
        if not self._stopping.is_set():
            # Said now, not once run() wakes: a forced stop may come first.
            logger.info(
                "stopping: letting requests in flight finish (up to %g s)",
                self.config.endure.grace_period,
            )
        self._stopping.set()

    async def reset(self) -> None:
        """Replace the workers of every pool (SIGUSR1); none drops a request.

        A pool whose replacements cannot start keeps its old workers and
        logs why; the others are reset all the same.
        """

        async def reset(pool: Pool) -> None:
            try:
                await pool.reset()
            except WorkerStartError as exc:
                logger.error(
                    "pool %s: reset failed, the old workers serve on: %s",
                    pool.name,
                    exc.summary,
                    extra={"pool": pool.name},
                )

        async with trio.open_nursery() as nursery:
            for pool in self.pools.values():
                nursery.start_soon(reset, pool)

    async def run(
        self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until ``stop`` is called (graceful) or cancelled (immediate).

        Raises:
            WorkerStartError: a worker could not start; nothing is left
                running.
            BindError: a front could not listen on its address.
        """
        async with trio.open_nursery() as nursery:
            failure = await self._serve(nursery, task_status)
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        logger.info("stopped")

    async def _serve(
        self, nursery: trio.Nursery, task_status: trio.TaskStatus[Server]
    ) -> TrioRunnerError | None:
        """Start everything, serve until stopped, drain; or return why not."""
        config = self.config
        if config.http is None:
            return ConfigError(
                "nothing to serve: the configuration has no [http] section "
                "(add one with at least an address, e.g. "
                "-o http.address=127.0.0.1:8080)"
            )
        if config.http.ssl is not None:
            # Read the certificate before any worker starts: a bad one
            # fails start-up at once.
            try:
                self._tls = server_context(config.http.ssl, config.working_dir)
            except ConfigError as exc:
                return exc
        failure = self._make_services()
        if failure is not None:
            return failure
        if config.rpc is not None:
            failure = await self._start_rpc(nursery, config.rpc)
            if failure is not None:
                return failure
        try:
            relay = await open_relay(
                config.server.relay,
                relay_nursery=nursery,
                base_dir=config.working_dir,
                user=config.server.user,
            )
        except BindError as exc:
            return exc
        pools = [self._make_pool(name, relay) for name in self._pool_names()]
        failure = await self._start_pools(pools, pool_nursery=nursery)
        if failure is not None:
            return failure
        if config.reload is not None:
            try:
                await nursery.start(
                    watch_for_reload, config.reload, self.pools, config.working_dir
                )
            except ConfigError as exc:
                return exc
        failure = await self._start_services(nursery)
        if failure is not None:
            return failure
        async with trio.open_nursery() as fronts:
            if config.http is not None:
                failure = await self._start_http(fronts, config.http)
                if failure is not None:
                    fronts.cancel_scope.cancel()
                    return failure
            self._started = True
            task_status.started(self)
            await self._stopping.wait()
            grace = config.endure.grace_period
            # The servers stop accepting at once and drain in-flight
            # requests for up to grace_period (and _ANSWER_TIME) before
            # they return; at grace_period, requests PHP still runs are
            # answered 503.
            fronts.cancel_scope.cancel()
            answering = trio.CancelScope()
            nursery.start_soon(self._answer_at_grace_end, grace, answering)
        answering.cancel()  # the fronts are done: nothing is left to answer
        self._warn_if_cut(grace)
        async with trio.open_nursery() as closers:
            for pool in self.pools.values():
                closers.start_soon(pool.aclose)
        return None

    async def _start_rpc(
        self, nursery: trio.Nursery, rpc: RpcConfig
    ) -> TrioRunnerError | None:
        """Listen on ``rpc.listen`` with every RPC service."""
        services: list[RpcService] = [
            Informer(self.pools),  # the live dict: pools are added below
            Resetter(self.pools),
            RpcInfo(self.config.data or {}),
            AppLogger(),
            *self.rpc_services,
        ]
        # Without [metrics] or [status], calls to them get "can't find
        # service", as with RoadRunner when the plugin is not configured.
        if self.metrics is not None:
            services.append(RpcMetrics(self.metrics.app))
        if self.status is not None:
            services.append(RpcStatus(self.status))
        server = RpcServer(
            rpc.listen,
            services,
            base_dir=self.config.working_dir,
            user=self.config.server.user,
        )
        try:
            self.rpc_address = await nursery.start(server.run)
        except BindError as exc:
            return exc
        return None

    async def _start_http(
        self, fronts: trio.Nursery, http: HttpConfig
    ) -> TrioRunnerError | None:
        pool = self.pools["http"]
        # No Date from the bridge: the lean server adds one where PHP sent
        # none, and build_app's DateHeader does for hypercorn.
        bridge = HttpBridge.from_config(
            pool,
            http,
            working_dir=self.config.working_dir,
            user=self.config.server.user,
        )
        # build_app writes the access log around the whole middleware stack,
        # so files and preflights the middleware answers are logged too.
        bridge.access_logs = False
        self._bridges.append(bridge)
        # The lean server adds Date itself where it is missing (PHP's own
        # first); hypercorn's would add a second one, so there build_app does.
        lean = uses_lean_server(http)
        working_dir = self.config.working_dir
        try:
            app = build_app(bridge, http, working_dir=working_dir, date_header=True)
            plain_app = (
                build_app(bridge, http, working_dir=working_dir) if lean else app
            )
        except ConfigError as exc:
            return exc
        if self.metrics is not None:
            counted = RequestMetrics(app, self.metrics.http)
            if plain_app is not app:
                plain_app = RequestMetrics(plain_app, self.metrics.http)
            else:
                plain_app = counted
            app = counted
        failure = await self._start_https(fronts, http, app)
        if failure is not None:
            return failure
        redirect = http.ssl is not None and http.ssl.redirect
        if redirect:
            assert self.https_address is not None
            plain_app = HttpsRedirect(int(self.https_address.rpartition(":")[2]))
        try:
            self.http_address = await fronts.start(
                plain_server(
                    http,
                    grace_period=self.config.endure.grace_period + _ANSWER_TIME,
                    date_header=redirect or lean,
                ),
                plain_app,
                http.address,
            )
        except BindError as exc:
            return BindError(f"http: {exc} (set http.address to a free host:port)")
        logger.info(
            "http: serving on %s (workers: %s)",
            " and ".join(url for url in (self.http_url, self.https_url) if url),
            ", ".join(str(worker.pid) for worker in pool.workers) or "debug mode",
            extra={"pool": "http", "address": self.http_address},
        )
        return None

    async def _start_https(
        self, fronts: trio.Nursery, http: HttpConfig, app: ASGIApp
    ) -> TrioRunnerError | None:
        """Serve ``app`` over TLS on ``http.ssl.address``, if configured."""
        if http.ssl is None or self._tls is None:
            return None
        try:
            self.https_address = await fronts.start(
                tls_server(
                    http,
                    self._tls,
                    grace_period=self.config.endure.grace_period + _ANSWER_TIME,
                ),
                app,
                http.ssl.address,
            )
        except BindError as exc:
            hint = "set http.ssl.address to a free host:port"
            return BindError(f"http.ssl: {exc} ({hint})")
        return None

    def _make_services(self) -> TrioRunnerError | None:
        """Build metrics and status, if configured, before RPC serves them."""
        config = self.config
        try:
            if config.metrics is not None:
                self.metrics = MetricsService(config.metrics, self.pools)
            if config.status is not None:
                self.status = StatusService(config.status, self.pools)
        except ConfigError as exc:
            return exc
        return None

    async def _start_services(
        self, service_nursery: trio.Nursery
    ) -> TrioRunnerError | None:
        """Serve metrics and status; they run until the server's nursery is
        cancelled, after the pools have stopped."""
        try:
            if self.metrics is not None:
                await service_nursery.start(self.metrics.run)
            if self.status is not None:
                await service_nursery.start(self.status.run)
        except BindError as exc:
            return exc
        return None

    async def _answer_at_grace_end(self, grace: float, scope: trio.CancelScope) -> None:
        """At the end of the grace period, end the requests left in the pools.

        Those PHP still runs and those waiting for a worker are answered
        503 while the fronts still drain (they get ``_ANSWER_TIME`` more),
        rather than cut with no answer at all; no worker starts after it.
        """
        with scope:
            await trio.sleep(grace)
            cut = sum(pool.cut_in_flight() for pool in self.pools.values())
            if cut:
                logger.warning(
                    "grace period (%g s) over: ending %d request(s) PHP still "
                    "runs or that wait for a worker; they are answered 503 "
                    "(raise endure.grace_period to give them longer)",
                    grace,
                    cut,
                    extra={"reason": "shutdown"},
                )

    def _warn_if_cut(self, grace: float) -> None:
        # Counted by the bridges as the fronts cancel them: a count taken
        # when the grace period ends would race with the cancellation.
        cut = sum(bridge.cut for bridge in self._bridges)
        if cut:
            logger.warning(
                "grace period (%g s) over: cutting %d request(s) still in flight "
                "(raise endure.grace_period to give them longer)",
                grace,
                cut,
            )

    def _pool_names(self) -> list[str]:
        return ["http"] if self.config.http is not None else []

    async def _start_pools(
        self, pools: list[Pool], *, pool_nursery: trio.Nursery
    ) -> WorkerStartError | None:
        """Start every pool in parallel; return the first start failure."""
        failures: list[WorkerStartError] = []
        nursery = pool_nursery

        async def start(pool: Pool) -> None:
            try:
                await nursery.start(pool.run)
            except WorkerStartError as exc:
                failures.append(exc)

        async with trio.open_nursery() as starters:
            for pool in pools:
                starters.start_soon(start, pool)
        return failures[0] if failures else None

    def _make_pool(self, name: str, relay: PipeRelay | SocketRelay) -> Pool:
        config = self.config
        assert config.http is not None
        pool_config = config.http.pool
        spawner = ProcessSpawner(
            argv=pool_config.command or config.server.command,
            env=worker_environment(
                relay=relay.spec,
                mode=name,
                env=config.server.env,
                rpc=config.rpc.listen if config.rpc else None,
            ),
            relay=relay,
            cwd=config.working_dir,
            user=config.server.user,
            relay_timeout=config.server.relay_timeout,
        )
        pool = Pool(name, spawner, pool_config)
        self.pools[name] = pool
        return pool
