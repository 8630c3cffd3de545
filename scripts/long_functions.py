#!/usr/bin/python3
"""Lists functions (and lambdas at namespace level) in C++ sources longer than a limit, and files longer than
another: a quick check of the house style's "functions < ~80 lines, files < ~450 lines". Heuristic (brace
matching after a parameter list), not a parser; clang-tidy's readability-function-size is the exact check.

usage: long_functions.py [--function-lines N] [--file-lines N] DIR...
Exits 1 when something is over a limit.
"""
import argparse
import pathlib
import re
import sys

CONTROL = re.compile(r"\b(if|for|while|switch|catch|namespace|class|struct|enum|union|extern)\b")


def strip(text):
    # Comments and string/char literals out, newlines kept so line numbers stay right.
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    text = strip(path.read_text(errors="replace"))
    stack = []  # (kind, start_line, name)
    header_start = 0
    line = 1
    found = []
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            head = text[header_start:i]
            in_function = any(kind == "function" for kind, _, _ in stack)
            is_function = (not in_function and ")" in head and not CONTROL.search(head.split("(")[0])
                           and not re.search(r"=\s*$", head))
            name = ""
            if is_function:
                m = re.search(r"([~\w:<>]+)\s*\(", head)
                name = m.group(1) if m else "?"
            stack.append(("function" if is_function else "block", line, name))
            header_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function":
                    found.append((name, start, line))
            header_start = i + 1
        elif c == ";":
            header_start = i + 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--function-lines", type=int, default=80)
    ap.add_argument("--file-lines", type=int, default=450)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    over = False
    for d in args.dirs:
        for path in sorted(pathlib.Path(d).rglob("*")):
            if path.suffix not in (".cpp", ".hpp"):
                continue
            lines = path.read_text(errors="replace").count("\n")
            if lines > args.file_lines:
                print(f"{path}: file has {lines} lines (limit {args.file_lines})")
                over = True
            for name, start, end in functions(path):
                if end - start + 1 > args.function_lines:
                    print(f"{path}:{start}: {name} has {end - start + 1} lines (limit {args.function_lines})")
                    over = True
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
