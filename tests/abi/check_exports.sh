#!/bin/sh
# The driver module must export exactly the ABI entry point and nothing else.
set -eu
module="$1"
symbols=$(nm -D --defined-only "$module" | awk '$2 ~ /[TDBRWVui]/ {print $3}' | sort)
echo "defined dynamic symbols of $module:"
echo "$symbols" | sed 's/^/  /'
if [ "$symbols" != "volume_driver_negotiate" ]; then
    echo "FAIL: expected only volume_driver_negotiate" >&2
    exit 1
fi
