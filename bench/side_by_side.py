#!/usr/bin/env python3
"""Print neuroscope / peer ratios from two files of JSON lines ({"task", "impl", "best_s", ...}):

    python3 bench/side_by_side.py PEER.json NEUROSCOPE.json

Any other key both lines share (a checksum, a score) is printed next to the ratio, so that a
fast but wrong result shows.
"""
import json, os, sys


def cpu():
    """The CPU model, its widest vector instruction set and the core count, for the table's CPU
    column: ratios measured on different CPUs are never compared."""
    model, flags = "unknown CPU", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE only" if flags else "unknown ISA"
    return f"{model}, {os.cpu_count()} cores, {isa}"


print(f"CPU: {cpu()}")

peer = {j["task"]: j for j in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{")))}
for line in open(sys.argv[2]):
    if not line.startswith("{"):
        continue
    a = json.loads(line)
    b = peer[a["task"]]
    extra = {k: (a[k], b[k]) for k in a if k in b and k not in ("task", "impl", "best_s")}
    print(f"{a['task']}: neuroscope {a['best_s']:.3f} s, {b['impl']} {b['best_s']:.3f} s, "
          f"ratio {a['best_s'] / b['best_s']:.2f}  {extra}")
