"""One exception hierarchy for the runtime and server; server/errors.py maps it to HTTP."""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidRequestError(ApplianceError):
    """A client mistake: answered with 400 and OpenAI's invalid_request_error body."""

    status = 400

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class PayloadTooLargeError(InvalidRequestError):
    status = 413


class ModelNotFoundError(InvalidRequestError):
    """A request's `model` names none of the served models: 404, as OpenAI answers it."""

    status = 404

    def __init__(self, message: str):
        super().__init__(message, param="model", code="model_not_found")


class UnsupportedMediaTypeError(InvalidRequestError):
    """A body sent without a JSON content type: 415 (server/guards.py says why)."""

    status = 415


class OverloadedError(ApplianceError):
    """The queue is full: answered with 429 and Retry-After."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class QueueTimeoutError(ApplianceError):
    """A request waited longer than the configured max queue wait: 503."""


class NotReadyError(ApplianceError):
    """The backend is still loading or warming up: 503."""


class ArtifactError(ApplianceError):
    """A missing, corrupt or incompatible artifact: a startup failure with one clear message."""


class ConfigError(ApplianceError):
    """A launch flag whose value cannot be served (startup fails with one line)."""


class MissingDependencyError(ApplianceError):
    """An optional dependency is not installed; the message names the install extra."""
