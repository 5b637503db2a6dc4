"""server.guards.JsonContentTypeMiddleware: bodies a browser may send cross-site without a
preflight (text/plain, form-encoded, multipart, no Content-Type) are 415; JSON passes."""

from __future__ import annotations

import httpx
import pytest

from server.guards import JsonContentTypeMiddleware, Message, Receive, Scope, Send


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the guard: answers 200 with the body it was sent."""
    body = b""
    while True:
        message: Message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def call(method: str, content_type: str | None) -> httpx.Response:
    guard = JsonContentTypeMiddleware(echo)
    # server.guards types a scope as a dict; httpx hands a MutableMapping.
    transport = httpx.ASGITransport(app=lambda scope, receive, send: guard(dict(scope), receive,
                                                                           send))
    headers = {} if content_type is None else {"content-type": content_type}
    async with httpx.AsyncClient(transport=transport, base_url="http://appliance") as client:
        request = client.build_request(method, "/v1/embeddings", content=b'{"input": "hi"}',
                                       headers=headers)
        if content_type is None:  # httpx adds none for raw content; make sure of it
            request.headers.pop("content-type", None)
        return await client.send(request)


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/json;charset=UTF-8", "application/vnd.api+json", " application/json ",
])
async def test_json_bodies_pass(content_type: str) -> None:
    r = await call("POST", content_type)
    assert r.status_code == 200
    assert r.content == b'{"input": "hi"}'


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("content_type, sent", [
    ("text/plain", "'text/plain'"),
    ("text/plain;charset=UTF-8", "'text/plain;charset=UTF-8'"),
    ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
    ("multipart/form-data; boundary=x", "'multipart/form-data; boundary=x'"),
    ("text/json", "'text/json'"),
    ("application/jsonp", "'application/jsonp'"),
    (None, "no Content-Type"),
])
async def test_other_bodies_are_415_with_openai_body(method: str, content_type: str | None,
                                                     sent: str) -> None:
    r = await call(method, content_type)
    assert r.status_code == 415
    assert r.json() == {"error": {
        "message": "The request body must be JSON, sent with Content-Type: application/json "
                   f"(this request sent {sent}).",
        "type": "invalid_request_error", "param": None, "code": "unsupported_media_type"}}


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
async def test_methods_without_a_parsed_body_pass(method: str) -> None:
    assert (await call(method, None)).status_code == 200
