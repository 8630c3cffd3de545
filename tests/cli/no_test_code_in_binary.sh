#!/bin/sh
# The shipped volume-host carries no test code: no build-tree or source-tree path and nothing of the simulated
# host (an option, its setup code, its tools' location). Debug info is stripped first, as the packages strip it
# (it names the compile directory by design); the symbol table is kept, so linked-in test code still shows.
# A sanitized build names its source files by design (ASan's global descriptors, UBSan's check locations); it is
# never shipped, so there only the test tree's paths are refused.
# usage: no_test_code_in_binary.sh BINARY BUILD_DIR SOURCE_DIR [sanitized]
set -eu
binary=$1 build_dir=$2 source_dir=$3 sanitized=${4:-}
source_pattern=$source_dir
[ "$sanitized" = sanitized ] && source_pattern=$source_dir/tests/
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
objcopy --strip-debug "$binary" "$tmp"
found=$(strings -a "$tmp" | grep -i -F -e "$build_dir" -e "$source_pattern" -e simulat || true)
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
