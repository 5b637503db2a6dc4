"""Request parsing, input classification and response encoding (no server needed)."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from runtime.errors import InvalidRequestError
from server.encode import embeddings_body
from server.inputs import classify_input
from server.protocol import parse_request, validation_message


@pytest.mark.parametrize("value, kind, items", [
    ("hi", "text", ["hi"]),
    (["a", "b"], "text", ["a", "b"]),
    ([1, 2, 3], "tokens", [[1, 2, 3]]),
    ([[1], [2, 3]], "tokens", [[1], [2, 3]]),
])
def test_inputs_are_classified(value: str | list[str] | list[int] | list[list[int]], kind: str,
                               items: list[str] | list[list[int]]) -> None:
    req = parse_request(orjson.dumps({"input": value}))
    assert classify_input(req.input, 2048) == (kind, items)


@pytest.mark.parametrize("body, param", [
    (b"{oops", None),
    (b"[1, 2]", None),
    (b'{"model": "m"}', "input"),
    (b'{"input": 5}', "input"),
    (b'{"input": [true, false]}', "input"),
    (b'{"input": [1, "a"]}', "input"),
    (b'{"input": "x", "encoding_format": "hex"}', "encoding_format"),
    (b'{"input": "x", "dimensions": "8"}', "dimensions"),
])
def test_malformed_requests_are_400s(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_request(body)
    assert info.value.status == 400 and info.value.param == param


@pytest.mark.parametrize("value", ["", [], [""], ["ok", ""], [[]], [[1], []]])
def test_empty_inputs_are_refused(value: str | list[str] | list[list[int]]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        classify_input(parse_request(orjson.dumps({"input": value})).input, 2048)
    assert info.value.param == "input"


def test_too_many_inputs_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="at most 3"):
        classify_input(["a"] * 4, 3)


def test_base64_is_little_endian_float32_and_float_is_exact() -> None:
    vectors = np.array([[0.1, -2.5, 3e-8], [1.0, 0.0, -0.0]], dtype=np.float32)
    as_b64 = orjson.loads(embeddings_body(vectors, "base64", "m", 7))
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4")
                        for d in as_b64["data"]])
    np.testing.assert_array_equal(decoded, vectors)
    as_float = orjson.loads(embeddings_body(vectors, "float", "m", 7))
    np.testing.assert_array_equal(np.array([d["embedding"] for d in as_float["data"]],
                                           dtype=np.float32), vectors)
    assert as_float["usage"] == {"prompt_tokens": 7, "total_tokens": 7, "completion_tokens": 0,
                                 "prompt_tokens_details": None, "reasoning_tokens": 0,
                                 "completion_tokens_details": None}
    assert [d["index"] for d in as_float["data"]] == [0, 1]
    assert list(as_float) == ["object", "data", "model", "usage"]


def test_a_body_that_is_not_a_json_object_says_so() -> None:
    """A JSON body that is not an object (e.g. a list) is refused at the top level (a body
    that is not JSON at all is 415 before it reaches a route: server/guards.py)."""
    message, param = validation_message([{"loc": ("body",), "type": "model_attributes_type",
                                          "msg": "Input should be a valid dictionary"}])
    assert param is None
    assert message == ("The request body must be a JSON object, sent with Content-Type: "
                       "application/json (Input should be a valid dictionary).")
