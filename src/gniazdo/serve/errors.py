"""Errors the server answers with, in OpenAI's shape: ``{"error": {"message", "type", "code"}}``.

Interface (used by the API routes and the web pages):

    raise ServeError(404, "model 'x' is not served (models: tiny)")
    error_body(404, "...") -> {"error": {"message": "...", "type": "not_found_error", "code": 404}}

``ServeError`` is raised by :class:`~gniazdo.serve.service.ChatService` and turned into a JSON response by the
app's exception handler (or, inside a stream that has already started, into an ``data: {"error": ...}`` event).
"""

from __future__ import annotations

from typing import Any

# OpenAI's error types by status; the client libraries map statuses to exceptions, the type is for people.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    504: "timeout_error",
}


class ServeError(Exception):
    """An HTTP error with a one-line message; ``param``: the request field at fault, when there is one."""

    def __init__(self, status: int, message: str, type: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.type, self.param)


def error_body(status: int, message: str, type: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type or ERROR_TYPES.get(status, "server_error"),
                             "code": status}
    if param is not None:
        error["param"] = param
    return {"error": error}
