"""Every error -> HTTP status and OpenAI's body {"error": {message, type, param, code}}.

This is the one place that maps the runtime's exception hierarchy to HTTP.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.protocol import validation_message
from runtime.errors import (
    InvalidRequestError,
    NotReadyError,
    OverloadedError,
    QueueTimeoutError,
)

log = logging.getLogger(__name__)


def error_body(message: str, type_: str, param: str | None = None,
               code: str | int | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str, param: str | None = None,
                   code: str | int | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, param, code), status_code=status,
                        headers=headers)


def response_for(exc: Exception) -> JSONResponse:
    """The answer to any exception a request raised: the one mapping, shared by FastAPI's
    handlers and the /v1/embeddings fast path (server/embeddings_route.py)."""
    if isinstance(exc, RequestValidationError):
        message, param = validation_message(list(exc.errors()))
        return error_response(400, message, "invalid_request_error", param, "invalid_value")
    if isinstance(exc, InvalidRequestError):
        return error_response(exc.status, exc.message, "invalid_request_error", exc.param,
                              exc.code)
    if isinstance(exc, OverloadedError):
        return error_response(429, exc.message, "rate_limit_error", None, "overloaded",
                              headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
    if isinstance(exc, (QueueTimeoutError, NotReadyError)):
        return error_response(503, str(exc), "service_unavailable", None, "unavailable")
    if isinstance(exc, StarletteHTTPException):
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(exc.status_code, str(exc.detail), type_, None, None,
                              headers=getattr(exc, "headers", None))
    log.error("unhandled error", exc_info=exc)  # a 5xx is a bug: log it with its traceback
    return error_response(500, "Internal server error.", "server_error", None, None)


def install(app: FastAPI) -> None:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return response_for(exc)

    for kind in (RequestValidationError, InvalidRequestError, OverloadedError,
                 QueueTimeoutError, NotReadyError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handler)
