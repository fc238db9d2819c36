#!/usr/bin/env python3
"""Medians of alternating runs with TLS off and on: reads JSON lines (each
with "name", "value" and "tls": false/true) from the file named and prints,
per figure measured both ways, one line with both medians and their ratio.
Used by tls_ab.sh and tls_cross_host_ab.sh."""
import json
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "tls" in r:
        runs.setdefault(r["name"], {}).setdefault(r["tls"], []).append(
            r["value"])
for name, by in sorted(runs.items()):
    if False in by and True in by:
        off, on = statistics.median(by[False]), statistics.median(by[True])
        print(json.dumps({"name": f"{name}_tls_vs_plain", "value":
                          round(on / off, 3), "unit": "ratio",
                          "plain": off, "tls": on, "runs": len(by[True])}))
