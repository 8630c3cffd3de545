#!/usr/bin/env python3
"""Names the failed tests of a ctest JUnit file and prints the end of each one's output.

scripts/test.sh calls it last, so a CI log that keeps only its tail still says which test failed and why.
  failed_tests.py STAGE JUNIT_XML [--tests N] [--lines N]
Exit code 1 when it has no failed test to show (no file, unreadable, none failed): the caller shows the log.
"""
import argparse
import sys
import xml.etree.ElementTree as ElementTree


def failed_cases(path):
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.get("status") in ("fail", "failed") or case.find("failure") is not None:
            output = case.findtext("system-out") or ""
            yield case.get("name", "?"), float(case.get("time", "0") or 0), output


FAILURE_MARKS = (": Failure", "ERROR: ", "runtime error: ", "WARNING: ThreadSanitizer", "Traceback", "Timeout")


def first_failure(lines, count=12):
    """The lines from the first failure mark on: GoogleTest's message may be far from the output's end."""
    for index, line in enumerate(lines):
        if any(mark in line for mark in FAILURE_MARKS):
            return index, lines[index : index + count]
    return None, []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("stage")
    parser.add_argument("junit")
    parser.add_argument("--tests", type=int, default=4, help="outputs shown (all failed tests are named)")
    parser.add_argument("--lines", type=int, default=25, help="last lines shown of each output")
    args = parser.parse_args()
    try:
        failed = list(failed_cases(args.junit))
    except (OSError, ElementTree.ParseError) as error:
        print(f"== {args.stage}: no test results to report ({error})")
        return 1
    if not failed:
        print(f"== {args.stage}: no failed test in {args.junit}: it failed outside ctest's verdicts")
        return 1
    print(f"== {args.stage}: {len(failed)} failed test(s)")
    for name, seconds, _ in failed[:20]:
        print(f"   {name} ({seconds:.1f} s)")
    for name, _, output in failed[: args.tests]:
        lines = output.rstrip("\n").splitlines()
        start, excerpt = first_failure(lines)
        if excerpt and start < len(lines) - args.lines:
            print(f"-- {name}: its first failure (line {start + 1})")
            for line in excerpt:
                print(f"   {line[:300]}")
        print(f"-- {name}: last {min(len(lines), args.lines)} of {len(lines)} output lines")
        for line in lines[-args.lines:]:
            print(f"   {line[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
