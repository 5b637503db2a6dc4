"""Docker HEALTHCHECK: exit 0 when the server in this container answers GET /health.

Standard library only (the images carry no curl); the port comes from the same PORT
variable the entrypoint listens on.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def health_url() -> str:
    host = os.environ.get("HOST", "0.0.0.0")
    # A wildcard listener is reachable on loopback; a specific address only on itself.
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('PORT', '30000')}/health"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not ok:
        print(f"unhealthy: {url} answered {response.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
