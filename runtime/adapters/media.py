"""Image inputs: data URIs, bare base64, http(s) URLs and local paths, fetched and decoded
safely. Every refusal is an InvalidRequestError (400) naming the reason.

URLs: the host is resolved once, every address it resolves to must be public (loopback,
private, link-local, multicast and reserved ranges are refused unless the host is listed in
`allowed_domains`), and the connection goes to exactly that address, so a DNS answer cannot
change between the check and the connect. Redirects are followed by hand, each hop checked
the same way. Bodies are capped in bytes and the whole fetch in time. Local paths are refused
unless they resolve under `allowed_local_path`; file:// is always refused. The pixel count
is read from the header before anything is decoded (decompression bombs -> 400).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import re
import socket
import ssl
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from PIL import Image, UnidentifiedImageError

from runtime.errors import InvalidRequestError
from runtime.adapters.images import to_rgb

_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+=*\s*$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class MediaConfig:
    allowed_domains: tuple[str, ...] = ()  # hosts that may resolve to non-public addresses
    allowed_local_path: Path | None = None  # local files only under this directory
    timeout_s: float = 10.0  # whole fetch, redirects included
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 32_000_000  # width x height, checked before decoding
    max_redirects: int = 5
    threads: int = 4  # fetch and decode off the event loop


def refused(message: str, code: str = "invalid_image") -> InvalidRequestError:
    return InvalidRequestError(message, param="input", code=code)


def load_image(source: str, cfg: MediaConfig) -> Image.Image:
    """Any accepted image reference -> a decoded RGB PIL image."""
    return decode_image(read_source(source.strip(), cfg), cfg)


def read_source(source: str, cfg: MediaConfig) -> bytes:
    if not source:
        raise refused("The image is empty.")
    if source[:5].lower() == "data:":
        return _data_uri(source)
    scheme = _SCHEME.match(source)
    if scheme and len(scheme.group(1)) > 1:  # "C:\\..." is a Windows drive, not a scheme
        if scheme.group(1).lower() in ("http", "https"):
            return fetch_url(source, cfg)
        raise refused(f"Image URLs with the scheme {scheme.group(1)!r} are not accepted; "
                      "send http(s) URLs, data URIs or base64.", code="unsupported_image_source")
    if _BASE64.match(source) and len(source) >= 16:
        return _b64(source)
    return _local_file(source, cfg)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise refused("The image is not valid base64.") from exc


def _data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise refused("Image data URIs must look like data:image/<type>;base64,<data>.")
    return _b64(payload)


def _local_file(path: str, cfg: MediaConfig) -> bytes:
    if cfg.allowed_local_path is None:
        raise refused("Local image paths are not accepted by this server (start it with "
                      "--allowed-local-media-path DIR to allow a directory).",
                      code="unsupported_image_source")
    root = cfg.allowed_local_path.resolve()
    target = Path(path).resolve()  # symlinks and .. resolved before the check
    if not target.is_relative_to(root):
        raise refused(f"Local image paths must be under {root}.", code="unsupported_image_source")
    try:
        size = target.stat().st_size
        if size > cfg.max_bytes:
            raise refused(f"The image file is larger than {cfg.max_bytes} bytes.")
        return target.read_bytes()
    except OSError as exc:
        raise refused(f"The image file {path!r} cannot be read.") from exc


def decode_image(data: bytes, cfg: MediaConfig) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            if width * height > cfg.max_pixels:
                raise refused(f"The image has {width}x{height} pixels, more than the "
                              f"{cfg.max_pixels} this server decodes.", code="image_too_large")
            image.load()
            return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise refused("The image is a decompression bomb.", code="image_too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise refused("The image could not be decoded: the bytes are not a supported "
                      "image format, or the image is truncated.") from exc


def fetch_url(url: str, cfg: MediaConfig) -> bytes:
    deadline = time.monotonic() + cfg.timeout_s
    for _ in range(cfg.max_redirects + 1):
        status, location, body = _get(url, cfg, deadline)
        if status not in REDIRECTS:
            if status != 200:
                raise refused(f"Fetching the image URL answered HTTP {status}.",
                              code="image_fetch_failed")
            return body
        if not location:
            raise refused("The image URL redirected without a Location.", code="image_fetch_failed")
        url = urljoin(url, location)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise refused("The image URL redirected to a non-http(s) URL.",
                          code="unsupported_image_source")
    raise refused(f"The image URL redirected more than {cfg.max_redirects} times.",
                  code="image_fetch_failed")


def _get(url: str, cfg: MediaConfig, deadline: float) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise refused("The image URL has no host.", code="unsupported_image_source")
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    address = resolve_public(host, port, cfg)
    conn = _connection(host, address, port, https, _remaining(deadline))
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": "trt-embed", "Accept": "image/*"})
        resp = conn.getresponse()
        if resp.status in REDIRECTS:
            return resp.status, resp.getheader("Location"), b""
        return resp.status, None, _read_capped(resp, cfg.max_bytes, deadline)
    except (OSError, http.client.HTTPException) as exc:
        raise refused(f"Fetching the image URL failed: {exc.__class__.__name__}.",
                      code="image_fetch_failed") from exc
    finally:
        conn.close()


def resolve_public(host: str, port: int, cfg: MediaConfig) -> str:
    """The address to connect to; non-public ones only for hosts in allowed_domains."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise refused(f"The image host {host!r} does not resolve.", code="image_fetch_failed") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not _allowed_host(host, cfg.allowed_domains):
        blocked = [a for a in addresses if not is_public(a)]
        if blocked:
            raise refused(f"The image host {host!r} resolves to a non-public address "
                          f"({blocked[0]}); fetching it is not allowed.",
                          code="forbidden_image_source")
    return addresses[0]


def _allowed_host(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.strip("[]").rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (a.lower().rstrip(".") for a in allowed))


def is_public(address: str) -> bool:
    """Globally routable unicast only: no loopback, private, link-local, shared (CGNAT),
    documentation, reserved or multicast ranges."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever DNS would answer now."""

    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _connection(host: str, address: str, port: int, https: bool,
                timeout: float) -> http.client.HTTPConnection:
    cls = _PinnedHTTPS if https else _PinnedHTTP
    return cls(host, address, port, timeout)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise refused("Fetching the image URL timed out.", code="image_fetch_failed")
    return left


def _read_capped(resp: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise refused(f"The image is larger than {max_bytes} bytes.", code="image_too_large")
    chunks, total = [], 0
    while chunk := resp.read1(65536):  # one recv at a time: the deadline holds
        total += len(chunk)
        if total > max_bytes:
            raise refused(f"The image is larger than {max_bytes} bytes.", code="image_too_large")
        _remaining(deadline)
        chunks.append(chunk)
    return b"".join(chunks)
