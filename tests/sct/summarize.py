#!/usr/bin/env python3
"""Summarizes a UEFI SCT run from its key files (Sct/Log/**/*.ekl).

Each .ekl is one test case (one entry point of a test file) run once: a
|HEAD| line naming the case, one line per assertion
"<guid>:<PASS|FAILURE|WARNING>|<description>:<detail>", and a |TERM| line when
the case ran to its end (a case cut short by a hang or a reset has none).

Prints totals per SCT category and per test file, pass/fail/warning counts per
test case, and the unique failing assertions (GUID, source file:line,
description), deduplicated by GUID and source line.
"""
import argparse
import collections
import os
import re
import sys

ASSERTION = re.compile(
    r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})"
    r":(PASS|FAILURE|WARNING)\|(.*)$")
SOURCE = re.compile(r"([A-Za-z0-9_./\\-]+\.[ch]):(\d+)")


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if len(data) > 1 and data[1:2] == b"\x00":
        return data.decode("utf-16-le", errors="replace")
    return data.decode("utf-8", errors="replace")


class Case:
    def __init__(self, path):
        self.path = path
        self.category = "?"
        self.test = "?"
        self.entry = os.path.basename(path)
        self.counts = collections.Counter()
        self.failures = []
        self.points = set()
        self.terminated = False


def parse(path):
    case = Case(path)
    for raw in read_text(path).splitlines():
        line = raw.strip()
        if line.startswith("|HEAD|"):
            fields = line.split("|")
            # |HEAD|||config|scenario|date|time|guid|revision|entry|test|category|devpath
            if len(fields) >= 13:
                case.entry, case.test, case.category = fields[10], fields[11], fields[12]
            continue
        if line.startswith("|TERM|"):
            case.terminated = True
            continue
        match = ASSERTION.match(line)
        if not match:
            continue
        guid, result, rest = match.groups()
        case.counts[result] += 1
        source = SOURCE.findall(rest)
        where = "%s:%s" % (os.path.basename(source[-1][0].replace("\\", "/")),
                           source[-1][1]) if source else "?"
        case.points.add((guid.upper(), where))
        if result != "PASS":
            # The description is the text before the first ':' that starts the
            # detail; descriptions themselves rarely hold one.
            description = rest.split(":", 1)[0].strip()
            case.failures.append((guid.upper(), result, where, description))
    return case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir")
    parser.add_argument("--firmware", default="?")
    parser.add_argument("--categories", default="?")
    parser.add_argument("--elapsed", default="?")
    parser.add_argument("--complete", default="?")
    parser.add_argument("--resets", default="?")
    parser.add_argument("--hangs", default="?")
    args = parser.parse_args()

    paths = []
    for root, _, files in os.walk(args.log_dir):
        paths += [os.path.join(root, f) for f in files if f.lower().endswith(".ekl")]
    cases = [parse(p) for p in sorted(paths)]

    out = sys.stdout
    out.write("UEFI SCT summary: firmware %s, categories %s\n" % (args.firmware, args.categories))
    out.write("run: %ss, ran to the end: %s, resets continued: %s, host watchdog resets: %s,"
              " %d test case logs\n\n"
              % (args.elapsed, args.complete, args.resets, args.hangs, len(cases)))

    def totals(selected):
        counts = collections.Counter()
        unique = set()
        points = set()
        for case in selected:
            counts.update(case.counts)
            unique.update((g, w) for g, r, w, _ in case.failures if r == "FAILURE")
            points |= case.points
        return counts, unique, points

    def row(name, selected):
        counts, unique, points = totals(selected)
        total = sum(counts.values())
        cut = sum(1 for c in selected if not c.terminated)
        out.write("%-48s %6d %6d %6d %6d %7d %7d %5d\n" % (
            name[:48], total, counts["PASS"], counts["FAILURE"], counts["WARNING"],
            len(points), len(unique), cut))

    header = "%-48s %6s %6s %6s %6s %7s %7s %5s\n" % (
        "", "total", "pass", "fail", "warn", "uniqueT", "uniqueF", "cut")
    out.write("== Totals per SCT category (assertions recorded; uniqueT = distinct"
              " assertion points (GUID, file:line),\n   uniqueF = distinct failing ones;"
              " cut = cases without |TERM|, cut short by a hang or reset)\n" + header)
    by_category = collections.OrderedDict()
    for case in sorted(cases, key=lambda c: (c.category, c.test, c.entry)):
        by_category.setdefault(case.category, []).append(case)
    for category, selected in by_category.items():
        row(category, selected)
    row("ALL", cases)

    out.write("\n== Per test file\n" + header)
    by_test = collections.OrderedDict()
    for case in sorted(cases, key=lambda c: (c.category, c.test, c.entry)):
        by_test.setdefault(case.test, []).append(case)
    for test, selected in by_test.items():
        row(test, selected)

    out.write("\n== Per test case (test file / entry: pass fail warn)\n")
    for case in sorted(cases, key=lambda c: (c.category, c.test, c.entry)):
        out.write("%-70s %5d %5d %5d%s\n" % (
            ("%s / %s" % (case.test, case.entry))[:70], case.counts["PASS"],
            case.counts["FAILURE"], case.counts["WARNING"],
            "" if case.terminated else "  (cut short: no |TERM|)"))

    for kind, title in (("FAILURE", "Unique failing assertions"),
                        ("WARNING", "Unique warnings")):
        seen = collections.OrderedDict()
        for case in sorted(cases, key=lambda c: (c.category, c.test, c.entry)):
            for guid, result, where, description in case.failures:
                if result == kind and (guid, where) not in seen:
                    seen[(guid, where)] = (case.test, case.entry, description)
        out.write("\n== %s (%d): GUID  file:line  test / case  description\n"
                  % (title, len(seen)))
        for (guid, where), (test, entry, description) in seen.items():
            out.write("%s  %s  %s / %s  %s\n" % (guid, where, test, entry, description))


if __name__ == "__main__":
    main()
