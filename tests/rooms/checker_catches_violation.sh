#!/bin/sh
# The room checker must fail on a violation: copy plugin/, make xml include a libvirt header, expect failure.
set -eu
checker="$1"; plugin="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r "$plugin" "$tmp/plugin"
"$checker" "$tmp/plugin" >/dev/null || { echo "FAIL: the unmodified copy should pass"; exit 1; }
printf '#include "libvirt/connection.hpp"\n' >> "$tmp/plugin/xml/libvirt_xml.cpp"
if out=$("$checker" "$tmp/plugin"); then
  echo "FAIL: the checker accepted xml including libvirt:"; echo "$out"; exit 1
fi
echo "$out" | grep -q "room 'xml' may not include \"libvirt/connection.hpp\"" || { echo "FAIL: unexpected report: $out"; exit 1; }
mkdir "$tmp/plugin/newroom"
"$checker" "$tmp/plugin" | grep -q "room 'newroom' is not in rooms.txt" || { echo "FAIL: an unlisted room passed"; exit 1; }
echo "checker rejects violations"
