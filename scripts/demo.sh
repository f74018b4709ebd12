#!/usr/bin/env bash
# `make demo`: the live pipeline on simulated data, with the dashboard.
#
# Starts the devstack (real Kafka + Redis), a worker and the dashboard, prints the URL, then
# feeds a simulated workload (DEMO_SHOPS shops over DEMO_DAYS days) through the input topics
# at DEMO_RATE events/s while you watch. Ctrl-C stops the worker and the dashboard (the
# devstack keeps running: `tierstream devstack down`). DEMO_EXIT=1 stops after the feed.
set -euo pipefail
shops=${DEMO_SHOPS:-200}
days=${DEMO_DAYS:-40}
rate=${DEMO_RATE:-2000}
port=${DEMO_PORT:-8080}
out=${DEMO_DIR:-artifacts/demo}
mkdir -p "$out"

tierstream devstack up
eval "$(tierstream devstack env)"
run="demo-$(date +%Y%m%d%H%M%S)"
export TIERSTREAM_TOPIC_PREFIX="$run-" TIERSTREAM_NAMESPACE="$run"

tierstream simulate --shops "$shops" --days "$days" --seed 7 --output "$out/input.jsonl"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

TIERSTREAM_WEB_PORT=$((port + 1)) tierstream worker >"$out/worker.log" 2>&1 &
pids+=($!)
tierstream dashboard --port "$port" >"$out/dashboard.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do  # both up (the worker has created the topics) before feeding
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 \
    && curl -fs "http://127.0.0.1:$((port + 1))/health" >/dev/null 2>&1 && break
  sleep 0.5
done
echo
echo "demo: dashboard at http://127.0.0.1:$port/   (worker health: http://127.0.0.1:$((port + 1))/health)"
echo "demo: topics prefixed '$run-', Redis namespace '$run'; logs in $out/"
echo "demo: feeding $(wc -l <"$out/input.jsonl") simulated events at $rate/s ..."
echo
tierstream produce --input "$out/input.jsonl" --rate "$rate"
summary() { curl -fs "http://127.0.0.1:$port/api/platform" | python3 -c \
  'import json,sys,datetime as d; p=json.load(sys.stdin); w=p["watermark"]
print(p["shops"], "shops, per tier:", p["totals"], "watermark:",
      d.datetime.fromtimestamp(w / 1000, d.timezone.utc).isoformat(timespec="minutes") if w else None)'; }
last=""; same=0
for _ in $(seq 120); do  # let the worker catch up: until the summary holds still for 3 s
  now=$(summary); if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
  [ $same -ge 6 ] && break
  sleep 0.5
done
echo "demo: feed done; $last"
if [ "${DEMO_EXIT:-0}" = "1" ]; then
  exit 0
fi
echo "demo: still serving at http://127.0.0.1:$port/ — Ctrl-C to stop"
wait
