"""runtime/adapters/media.py: every accepted source decodes; every unsafe one is refused with 400."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.errors import InvalidRequestError
from runtime.adapters.media import MediaConfig, is_public, load_image
from tests.fixtures.media_server import bomb_png, media_server, photo_path

ALLOW_LOOPBACK = MediaConfig(allowed_domains=("127.0.0.1",), max_bytes=2 * 1024 * 1024)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with media_server() as url:
        yield url


def expected(name: str) -> np.ndarray:
    return np.asarray(Image.open(photo_path(name)).convert("RGB"))


def refused(source: str, cfg: MediaConfig, code: str | None = None) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        load_image(source, cfg)
    assert info.value.status == 400 and info.value.param == "input"
    if code:
        assert info.value.code == code, info.value.message
    return info.value


def test_data_uri_and_bare_base64() -> None:
    raw = photo_path("coffee.png").read_bytes()
    b64 = base64.b64encode(raw).decode()
    for source in (f"data:image/png;base64,{b64}", b64):
        assert np.array_equal(np.asarray(load_image(source, MediaConfig())), expected("coffee.png"))


def test_url_and_redirect_from_an_allowed_host(server: str) -> None:
    assert np.array_equal(np.asarray(load_image(f"{server}/rocket.jpg", ALLOW_LOOPBACK)),
                          expected("rocket.jpg"))
    assert np.array_equal(np.asarray(load_image(f"{server}/redirect-ok", ALLOW_LOOPBACK)),
                          expected("coffee.png"))


def test_local_path_only_under_the_allowed_dir(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    target.write_bytes(photo_path("coffee.png").read_bytes())
    cfg = MediaConfig(allowed_local_path=tmp_path)
    assert np.array_equal(np.asarray(load_image(str(target), cfg)), expected("coffee.png"))
    refused(str(target), MediaConfig(), "unsupported_image_source")
    refused(str(photo_path("coffee.png")), cfg, "unsupported_image_source")
    refused(f"{tmp_path}/../{photo_path('coffee.png')}", cfg, "unsupported_image_source")
    link = tmp_path / "link.png"
    link.symlink_to(photo_path("coffee.png"))
    refused(str(link), cfg, "unsupported_image_source")


@pytest.mark.parametrize("path,code", [
    ("/astronaut.png", "forbidden_image_source"),  # loopback, not allowed
    ("/redirect-localhost", "forbidden_image_source"),
])
def test_loopback_refused_unless_allowed(server: str, path: str, code: str) -> None:
    refused(f"{server}{path}", MediaConfig(), code)


@pytest.mark.parametrize("path,code", [
    ("/redirect-localhost", "forbidden_image_source"),  # another host after a redirect
    ("/redirect-metadata", "forbidden_image_source"),
    ("/redirect-file", "unsupported_image_source"),
    ("/loop", "image_fetch_failed"),
    ("/not-an-image", "invalid_image"),
    ("/bomb.png", "image_too_large"),
    ("/huge", "image_too_large"),
    ("/missing", "image_fetch_failed"),
])
def test_hostile_urls_refused(server: str, path: str, code: str) -> None:
    refused(f"{server}{path}", ALLOW_LOOPBACK, code)


@pytest.mark.parametrize("source,code", [
    ("http://10.0.0.1/x.png", "forbidden_image_source"),
    ("http://192.168.1.1/x.png", "forbidden_image_source"),
    ("http://169.254.169.254/latest/meta-data", "forbidden_image_source"),
    ("http://[::1]/x.png", "forbidden_image_source"),
    ("http://[::ffff:127.0.0.1]/x.png", "forbidden_image_source"),
    ("http://0.0.0.0/x.png", "forbidden_image_source"),
    ("file:///etc/passwd", "unsupported_image_source"),
    ("ftp://example.com/x.png", "unsupported_image_source"),
    ("/etc/passwd", "unsupported_image_source"),
    ("data:image/png;base64,!!!notbase64!!!", "invalid_image"),
    ("data:image/png,rawbytes", "invalid_image"),
    ("QUJDREVGR0hJSktMTU5PUA===", "invalid_image"),  # bad padding
    (base64.b64encode(b"definitely not an image, just text").decode(), "invalid_image"),
    (base64.b64encode(bomb_png()).decode(), "image_too_large"),
    ("", "invalid_image"),
])
def test_unsafe_or_bad_sources_refused(source: str, code: str) -> None:
    refused(source, ALLOW_LOOPBACK, code)


def test_public_address_classification() -> None:
    assert is_public("93.184.216.34") and is_public("2606:4700::1111")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.1.1",
                    "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1", "0.0.0.0",
                    "100.64.0.1", "192.0.2.1", "ff02::1"):
        assert not is_public(address), address


def test_slow_server_times_out(server: str) -> None:
    cfg = MediaConfig(allowed_domains=("127.0.0.1",), timeout_s=0.5)
    assert "Timeout" in refused(f"{server}/slow", cfg, "image_fetch_failed").message
    assert load_image(f"{server}/slow", ALLOW_LOOPBACK).size == (600, 400)  # patient: fine
