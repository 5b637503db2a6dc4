"""Pure ASGI middleware that guards every route: API-key auth, JSON bodies only, and the
request body cap.

Both run before FastAPI routes a request, so routes added later (and /docs,
/openapi.json, /metrics) are covered without anyone remembering to. They are plain ASGI,
not BaseHTTPMiddleware, so the receive channel stays the server's own: the body is
streamed through a byte counter and a client disconnect still reaches the handler.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, MutableMapping

from fastapi.responses import JSONResponse

from runtime.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from server.errors import error_body, response_for

Scope = dict[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes and scrapes answer without credentials, as in SGLang (srt/utils/auth.py
# decide_request_auth: paths starting /health, /ready or /metrics): orchestrators and
# Prometheus reach them before, and without, any client key.
OPEN_PREFIXES = ("/health", "/ready", "/metrics")
# Methods whose body a route parses; every route that takes one takes JSON.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", ()) if k.lower() == name), None)


class ApiKeyMiddleware:
    """Every path but the probes and /metrics needs `Authorization: Bearer <key>`; 401
    otherwise."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        given = _header(scope, b"authorization") or b""
        # compare_digest: the time taken does not reveal how much of the key matched.
        if hmac.compare_digest(given, self._expected):
            return await self.app(scope, receive, send)
        message = ("Incorrect API key provided." if given else
                   "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        response = JSONResponse(error_body(message, "invalid_request_error", None,
                                           "invalid_api_key"), status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Bodies over `max_bytes` get 413 without being read in full.

    A declared Content-Length over the cap is refused before one body byte is read; a
    chunked (or lying) body is counted while it streams and refused once it passes the cap.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(
                error_body(self._message(), "invalid_request_error", None, "payload_too_large"),
                status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        await self.app(scope, self._counting(receive), send)

    def _message(self) -> str:
        return f"The request body is larger than this server's limit of {self.max_bytes} bytes."

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # the handler's error mapping answers 413
                    raise PayloadTooLargeError(self._message(), code="payload_too_large")
            return message

        return counted


def is_json_media_type(value: bytes) -> bool:
    """application/json or application/<anything>+json, any parameters (charset) ignored."""
    media = value.partition(b";")[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json"))


class JsonContentTypeMiddleware:
    """A POST, PUT or PATCH whose Content-Type is not JSON gets 415, before its body is read.

    Why: a browser sends text/plain, application/x-www-form-urlencoded and
    multipart/form-data POSTs cross-site without a CORS preflight, and it sends a POST with
    no Content-Type at all (a Blob body) the same way. Were such bodies parsed as JSON, any
    web page a user opens could drive an appliance on their machine that runs without
    --api-key. So a missing Content-Type is refused too, as FastAPI's strict content-type
    check refuses it; curl needs -H 'Content-Type: application/json' with -d, while
    requests' json= and the OpenAI SDKs send it already.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        given = _header(scope, b"content-type")
        if given is not None and is_json_media_type(given):
            return await self.app(scope, receive, send)
        sent = f"'{given.decode('latin-1')}'" if given is not None else "no Content-Type"
        error = UnsupportedMediaTypeError(
            f"The request body must be JSON, sent with Content-Type: application/json "
            f"(this request sent {sent}).", code="unsupported_media_type")
        await response_for(error)(scope, receive, send)
