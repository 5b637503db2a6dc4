#!/bin/sh
# Let the builder venv import what only the server venv holds (tensorrt, cuda-python)
# without installing a second copy: a .pth line appends /opt/venv's site-packages after
# the builder's own, so on any overlap the builder's packages win.
set -eu
server=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
builder=$(/opt/builder/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "$server" >"$builder/trt-embed-server-venv.pth"
