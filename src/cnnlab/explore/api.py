"""The JSON API behind the page (documented in ``docs/explore-api.md``) and the static files.

Every endpoint checks its request first; a bad one gets a 4xx response whose body is one JSON
line, ``{"error": "expected ..., received ..."}``, and never a traceback. Model work runs in
Starlette's thread pool, serialised by the explorer's lock.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnnlab.errors import CnnlabError, ConfigError, ModelError
from cnnlab.explore.explorer import DEFAULT_MAX_CHANNELS, Explorer
from cnnlab.explore.inputs import mapping, parse_input, parse_transform, refused, whole
from cnnlab.fileio import strict_json

STATIC = Path(__file__).parent / "static"
#: Largest accepted upload (an image file), in bytes.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: Largest accepted JSON request body, in bytes (a 2048x2048 drawing is 5.6 MB of base64).
MAX_JSON_BYTES = 8 * 1024 * 1024
#: The page loads nothing from elsewhere: scripts, styles and images all come from this server.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """A request refused with an HTTP status and one line of explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StrictJSONResponse(JSONResponse):
    """A JSON response that is always strict JSON (RFC 8259), which browsers parse: NaN and
    infinite numbers (a diverged model's probabilities, a unit's value) become ``null``
    (:func:`cnnlab.fileio.strict_json`) instead of ``NaN``, which ``JSON.parse`` rejects."""

    def render(self, content: Any) -> bytes:
        return strict_json(content, indent=None).encode("utf-8")


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


def error_response(status: int, message: str) -> StrictJSONResponse:
    return StrictJSONResponse({"error": _one_line(message)}, status_code=status)


def _status_of(exc: CnnlabError) -> int:
    return 422 if isinstance(exc, ModelError) else 400


Handler = Callable[[Request], Awaitable[Any]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A JSON endpoint: the handler's result as JSON, every failure as a one-line error."""

    async def run(request: Request) -> Response:
        try:
            return StrictJSONResponse(await handler(request))
        except ApiError as exc:
            return error_response(exc.status, str(exc))
        except CnnlabError as exc:
            return error_response(_status_of(exc), str(exc))
        except Exception as exc:  # a bug: the server keeps serving, the client gets one line
            line = _one_line(f"{type(exc).__name__}: {exc}")
            print(f"cnnlab explore: internal error in {request.url.path}: {line}", file=sys.stderr)
            return error_response(500, f"internal error: {line}")

    return run


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"expected {what} of at most {limit} bytes, received {declared} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"expected {what} of at most {limit} bytes, received more")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The request's JSON object, with no keys but ``allowed``."""
    data = await read_body(request, MAX_JSON_BYTES, "a JSON body")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"expected a JSON body, received invalid JSON ({exc})") from None
    body = mapping(body, "body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise refused(f"keys {', '.join(sorted(allowed))}", key=unknown[0])
    return body


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise refused(f"true or false for {key}", **{key: value})
    return value


def _query_flag(request: Request, key: str) -> bool:
    value = request.query_params.get(key, "0").lower()
    if value not in ("0", "1", "true", "false"):
        raise refused(f"{key}=0 or 1", **{key: value})
    return value in ("1", "true")


def create_app(explorer: Explorer, allowed_hosts: list[str] | None = None) -> Starlette:
    """The Starlette application serving ``explorer``: the page, its files and the API.

    Args:
        explorer: the model side.
        allowed_hosts: ``Host`` header values accepted (``None``: any); a server bound to the
            loopback passes its names, so a web page elsewhere cannot reach the API by
            pointing a domain at 127.0.0.1 (DNS rebinding).
    """

    def row_of(body: dict[str, Any]) -> Any:
        return explorer.row(body.get("layer"), body.get("call", 0))

    async def model(request: Request) -> dict[str, Any]:
        return await run_in_threadpool(explorer.info)

    async def examples(request: Request) -> dict[str, Any]:
        return await run_in_threadpool(explorer.examples)

    async def forward(request: Request) -> dict[str, Any]:
        body = await read_json(
            request, ("input", "transform", "maps", "layers", "max_channels", "raw", "top_k")
        )
        spec, transform = parse_input(body.get("input")), parse_transform(body.get("transform"))
        layers = body.get("layers")
        if layers is not None:
            if not isinstance(layers, list) or not layers:
                raise refused("layers as a list of names or indices", layers=layers)
            layers = [explorer.row(item).index for item in layers]
        options = {
            "maps": _flag(body, "maps", True),
            "raw": _flag(body, "raw", False),
            "layers": layers,
            "max_channels": (
                whole(body, "max_channels", 0) if "max_channels" in body else DEFAULT_MAX_CHANNELS
            ),
            "top_k": whole(body, "top_k", 1) if "top_k" in body else None,
        }
        return await run_in_threadpool(lambda: explorer.forward(spec, transform, **options))

    async def unit(request: Request) -> dict[str, Any]:
        body = await read_json(
            request, ("input", "transform", "layer", "call", "channel", "y", "x")
        )
        spec, transform = parse_input(body.get("input")), parse_transform(body.get("transform"))
        row = row_of(body)
        channel, y, x = whole(body, "channel", 0), whole(body, "y", 0), whole(body, "x", 0)
        return await run_in_threadpool(explorer.unit, spec, transform, row, channel, y, x)

    async def cam(request: Request) -> dict[str, Any]:
        body = await read_json(request, ("input", "transform", "class", "layer"))
        spec, transform = parse_input(body.get("input")), parse_transform(body.get("transform"))
        target, layer = body.get("class"), body.get("layer")
        if target is not None and (isinstance(target, bool) or not isinstance(target, str | int)):
            raise refused("class as a class name or index", **{"class": target})
        if layer is not None and not isinstance(layer, str):
            raise refused("layer as a layer name", layer=layer)
        return await run_in_threadpool(explorer.cam, spec, transform, target, layer)

    async def filters(request: Request) -> dict[str, Any]:
        unknown = sorted(set(request.query_params) - {"layer"})
        if unknown:
            raise refused("the query parameter layer", parameter=unknown[0])
        return await run_in_threadpool(explorer.filters, request.query_params.get("layer"))

    async def parity(request: Request) -> dict[str, Any]:
        body = await read_json(request, ("input", "transform"))
        spec, transform = parse_input(body.get("input")), parse_transform(body.get("transform"))
        return await run_in_threadpool(explorer.parity, spec, transform)

    async def upload(request: Request) -> dict[str, Any]:
        unknown = sorted(set(request.query_params) - {"invert", "centre"})
        if unknown:
            raise refused("query parameters invert, centre", parameter=unknown[0])
        invert, centre = _query_flag(request, "invert"), _query_flag(request, "centre")
        data = await read_body(request, MAX_UPLOAD_BYTES, "an image file")
        if not data:
            raise ConfigError("expected an image file as the request body, received 0 bytes")
        return await run_in_threadpool(explorer.upload, data, invert, centre)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        what = {404: "an existing path", 405: "another method"}.get(exc.status_code, "a request")
        detail = f"{request.method} {request.url.path}"
        return error_response(exc.status_code, f"expected {what}, received {detail}")

    routes = [
        Route("/", index),
        Route("/api/model", _endpoint(model)),
        Route("/api/examples", _endpoint(examples)),
        Route("/api/forward", _endpoint(forward), methods=["POST"]),
        Route("/api/unit", _endpoint(unit), methods=["POST"]),
        Route("/api/cam", _endpoint(cam), methods=["POST"]),
        Route("/api/filters", _endpoint(filters)),
        Route("/api/parity", _endpoint(parity), methods=["POST"]),
        Route("/api/upload", _endpoint(upload), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(_KnownHosts, allowed=allowed_hosts))
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error}
    )


class _SecurityHeaders:
    """Adds the content security policy (nothing from other origins) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _KnownHosts:
    """Refuses (400, one JSON line) requests whose ``Host`` header names another machine."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app, self.allowed = app, set(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":")[0]
        if name in self.allowed:
            await self.app(scope, receive, send)
            return
        message = (
            f"expected a request for this machine ({', '.join(sorted(self.allowed))}), "
            f"received Host: {host[:80]}"
        )
        await error_response(400, message)(scope, receive, send)
