#!/bin/sh
# The shipped volume-host carries no test code: no build-tree or source-tree path and nothing of the simulated
# host (an option, its setup code, its tools' location). Debug info is stripped first, as the packages strip it
# (it names the compile directory by design); the symbol table is kept, so linked-in test code still shows.
# usage: no_test_code_in_binary.sh BINARY BUILD_DIR SOURCE_DIR
set -eu
binary=$1 build_dir=$2 source_dir=$3
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
objcopy --strip-debug "$binary" "$tmp"
found=$(strings -a "$tmp" | grep -i -F -e "$build_dir" -e "$source_dir" -e simulat || true)
if [ -n "$found" ]; then
    echo "FAIL: $binary contains test code or build paths:"
    echo "$found" | head -20
    exit 1
fi
if "$binary" --help | grep -i -q simulat; then
    echo "FAIL: $binary --help offers a simulated host"
    exit 1
fi
echo "ok: $binary has no build-tree path and no simulated host"
