#!/usr/bin/env python3
"""Fail if a conformance test listed in the baseline no longer passes.

Usage: check_baseline.py RUNNER_JSON BASELINE
Baseline lines: "<file>|<test name>" for every test that passed before.
Also prints tests that pass now but are not in the baseline (progress).
"""
import json
import sys


def outcomes(path):
    data = json.load(open(path))
    result = {}
    for f in data.get("files", []):
        for t in f.get("tests", []):
            result[(f["file"], t["name"])] = t["outcome"]
    return result


def main():
    got = outcomes(sys.argv[1])
    baseline = set()
    for line in open(sys.argv[2], encoding="utf-8"):
        line = line.rstrip("\n")
        if line.strip() and not line.startswith("#"):
            fname, _, name = line.partition("|")
            baseline.add((fname, name))
    passing = {k for k, v in got.items() if v in ("pass", "xfail")}
    lost = sorted(baseline - passing)
    new = sorted(passing - baseline)
    for fname, name in new:
        print("newly passing: %s: %s" % (fname, name))
    for fname, name in lost:
        print("REGRESSION: %s: %s (%s)" % (fname, name, got.get((fname, name), "missing")))
    print("baseline: %d tests, %d still pass, %d regressed, %d newly passing"
          % (len(baseline), len(baseline) - len(lost), len(lost), len(new)))
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
