#!/usr/bin/python3
"""Fails when a plugin source includes a header from a room its own room may not know (plugin/rooms.txt), when
a folder of plugin/ is not in the table, or when docs/architecture.md's table differs from rooms.txt.

usage: check_rooms.py PLUGIN_DIR [ARCHITECTURE_MD]
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_table(plugin):
    table = {}
    for n, line in enumerate((plugin / "rooms.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        room, sep, allowed = line.partition(":")
        if not sep or not room.strip():
            sys.exit(f"rooms.txt:{n}: expected 'room: allowed ...'")
        table[room.strip()] = set(allowed.split())
    return table


def violations(plugin, table):
    found = []
    for folder in sorted(p for p in plugin.iterdir() if p.is_dir()):
        room = folder.name
        if room not in table:
            found.append(f"{folder}: room '{room}' is not in rooms.txt")
            continue
        for source in sorted(folder.rglob("*")):
            if source.suffix not in (".hpp", ".cpp", ".h", ".c"):
                continue
            for header in INCLUDE.findall(source.read_text(errors="replace")):
                other = header.split("/", 1)[0] if "/" in header else room
                if other == room or other in table[room] or header in table[room]:
                    continue
                if other not in table:
                    found.append(f"{source}: includes \"{header}\", which is in no room")
                else:
                    found.append(f"{source}: room '{room}' may not include \"{header}\" (room '{other}')")
    return found


def doc_problems(doc, table):
    # Between <!-- rooms:begin --> and <!-- rooms:end -->, rows look like: | `room` | `allowed` ... |
    text = doc.read_text()
    begin, end = text.find("<!-- rooms:begin -->"), text.find("<!-- rooms:end -->")
    if begin < 0 or end < begin:
        return [f"{doc}: no <!-- rooms:begin --> ... <!-- rooms:end --> table"]
    rows = {}
    for m in re.finditer(r"^\|\s*`([a-z_]+)`\s*\|\s*([^|]*)\|\s*$", text[begin:end], re.M):
        rows[m.group(1)] = set(re.findall(r"`([a-z_/.]+)`", m.group(2)))
    if rows != table:
        return [f"{doc}: the include table differs from rooms.txt: doc {sorted(rows.items())} "
                f"vs rooms.txt {sorted(table.items())}"]
    return []


def main():
    plugin = pathlib.Path(sys.argv[1])
    table = read_table(plugin)
    problems = violations(plugin, table)
    if len(sys.argv) > 2:
        problems += doc_problems(pathlib.Path(sys.argv[2]), table)
    for p in problems:
        print("FAIL:", p)
    print(f"{len(table)} rooms checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
