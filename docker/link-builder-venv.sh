#!/bin/sh
# Let the builder venv import what only the server venv holds (tensorrt, cuda-python)
# without installing a second copy: a .pth line appends the server venv's site-packages
# after the builder's own, so on any overlap the builder's packages win.
set -eu
server_venv=${SERVER_VENV:-/opt/venv}
builder_venv=${BUILDER_VENV:-/opt/builder}
purelib='import sysconfig; print(sysconfig.get_path("purelib"))'
server=$("$server_venv/bin/python" -c "$purelib")
builder=$("$builder_venv/bin/python" -c "$purelib")
echo "$server" >"$builder/trt-embed-server-venv.pth"
