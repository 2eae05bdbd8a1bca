#!/usr/bin/env python3
"""Print neuroscope / peer ratios from two files of JSON lines ({"task", "impl", "best_s", ...}):

    python3 bench/side_by_side.py PEER.json NEUROSCOPE.json

Any other key both lines share (a checksum, a score) is printed next to the ratio, so that a
fast but wrong result shows.
"""
import json, sys

peer = {j["task"]: j for j in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{")))}
for line in open(sys.argv[2]):
    if not line.startswith("{"):
        continue
    a = json.loads(line)
    b = peer[a["task"]]
    extra = {k: (a[k], b[k]) for k in a if k in b and k not in ("task", "impl", "best_s")}
    print(f"{a['task']}: neuroscope {a['best_s']:.3f} s, {b['impl']} {b['best_s']:.3f} s, "
          f"ratio {a['best_s'] / b['best_s']:.2f}  {extra}")
