#!/usr/bin/env python3
"""Adds a `diff:` line (a known, explained difference from InfluxDB 1.6) to the golden block of
a query. Usage: annotate.py FILE.golden 'QUERY TEXT' 'REASON'. regen.py keeps these lines."""
import sys

path, query, reason = sys.argv[1], sys.argv[2], sys.argv[3]
blocks = open(path).read().split("\n\n")
done = False
for i, b in enumerate(blocks):
    lines = b.split("\n")
    if any(l == "query: " + query for l in lines):
        lines = [l for l in lines if not l.startswith("diff: ")]
        at = max(j for j, l in enumerate(lines) if l.startswith("result: ")) + 1
        lines.insert(at, "diff: " + reason)
        blocks[i] = "\n".join(lines)
        done = True
if not done:
    sys.exit(f"query not found in {path}: {query}")
open(path, "w").write("\n\n".join(blocks))
