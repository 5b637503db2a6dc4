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
    ApplianceError,
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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(list(exc.errors()))
        return error_response(400, message, "invalid_request_error", param, "invalid_value")

    @app.exception_handler(InvalidRequestError)
    async def _invalid(_: Request, exc: InvalidRequestError) -> JSONResponse:
        return error_response(exc.status, exc.message, "invalid_request_error", exc.param,
                              exc.code)

    @app.exception_handler(OverloadedError)
    async def _overloaded(_: Request, exc: OverloadedError) -> JSONResponse:
        return error_response(429, exc.message, "rate_limit_error", None, "overloaded",
                              headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})

    @app.exception_handler(QueueTimeoutError)
    @app.exception_handler(NotReadyError)
    async def _unavailable(_: Request, exc: ApplianceError) -> JSONResponse:
        return error_response(503, str(exc), "service_unavailable", None, "unavailable")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(exc.status_code, str(exc.detail), type_, None, None,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # a 5xx is a bug: log it with its traceback
        return error_response(500, "Internal server error.", "server_error", None, None)
