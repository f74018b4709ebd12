#!/usr/bin/env bash
# `make demo`: a simulated month of a few hundred shops, folded by the file form, summarised.
set -euo pipefail
out=${DEMO_DIR:-artifacts/demo}
mkdir -p "$out"
tierstream simulate --shops 300 --days 45 --seed 7 --output "$out/input.jsonl"
tierstream replay --input "$out/input.jsonl" --output "$out/output.jsonl"
python3 - "$out/output.jsonl" <<'PY'
import collections, json, sys
tiers = collections.Counter()
last = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["type"] == "tier_assessed":
        last[o["shop_id"]] = o["tier"]
tiers.update(last.values())
print("demo: shops per tier after the last close:", dict(sorted(tiers.items())))
PY
echo "demo: inputs in $out/input.jsonl, outputs in $out/output.jsonl"
