"""ASGI wrapper that feeds the REST metrics: active requests and durations."""

from __future__ import annotations

import time
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from ..metrics import Metrics


class RequestMetrics:
    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.metrics.request_started()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.request_finished(scope["method"], time.perf_counter() - start)
