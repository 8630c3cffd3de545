#!/usr/bin/python3
"""What report.py and report_guest.py share: reading a stage's output, number formatting, verdicts."""
import json


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def f(x, digits=2):
    return '-' if x is None else f'{x:.{digits}f}'


def verdict(value, target, lower_is_better=True):
    if value is None:
        return 'not run'
    ok = value <= target if lower_is_better else value >= target
    return 'met' if ok else 'MISSED'
