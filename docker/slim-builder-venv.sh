#!/bin/sh
# Cut from the builder venv what an export never loads (sizes: README, Deploy): torch's C++
# test binaries (torch/test, torch/bin's *Test and test_*), its C++ headers (torch/include:
# only C++ extensions compile against them; the export compiles nothing), protoc, the
# packages' own test suites, and torch's symbol tables (`strip --strip-unneeded`
# keeps the dynamic symbols that loading needs; libtorch_cpu.so ships unstripped). Only
# torch's: auditwheel-patched libraries (scipy.libs' OpenBLAS) no longer load once stripped. pip was told --no-compile, so there is no bytecode to remove.
set -eu
site=$("${BUILDER_VENV:-/opt/builder}/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
before=$(du -sm "$site" | cut -f1)
rm -rf "$site/torch/test" "$site/torch/include" "$site/torch/bin/protoc"* \
       "$site/torch/bin/"*Test "$site/torch/bin/test_"* "$site/onnx/backend/test"
for pkg in scipy sklearn sympy networkx mpmath; do
    [ -d "$site/$pkg" ] && find "$site/$pkg" -type d -name tests -prune -exec rm -rf {} +
done
if command -v strip >/dev/null; then
    find "$site/torch/lib" -name '*.so*' -type f -exec strip --strip-unneeded {} +
else
    echo "slim-builder-venv: no strip (binutils) here; shared libraries left as they are"
fi
find "$site" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "slim-builder-venv: $site $before MB -> $(du -sm "$site" | cut -f1) MB"
