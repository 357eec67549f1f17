#!/usr/bin/env bash
# Builds the data of a small dt network with an earlier release, for the upgrade test
# (internal/e2e/proc/upgrade_test.go): the release at REV (a tag or commit of this repository)
# generates keys, runs a hub node and an edge on loopback, publishes a small site through the
# hub, records what the edge serves (each path's SHA-256 and ETag), and stops them cleanly.
# The keys, both data directories and expected.json are packed into
# internal/e2e/proc/testdata/upgrade/<REV>.tar.gz.
#
# Usage: ./scripts/make-upgrade-fixture.sh REV
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: $0 REV}
out="$PWD/internal/e2e/proc/testdata/upgrade/$rev.tar.gz"
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	git worktree remove --force "$tmp/src" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build dt and dt-publish at $rev"
git worktree add --detach "$tmp/src" "$rev" >/dev/null
(cd "$tmp/src" && go build -o "$tmp/bin/" ./cmd/dt ./cmd/dt-publish)

net="$tmp/net"
mkdir -p "$net"
"$tmp/bin/dt" keygen "$net/keys" >/dev/null

# waitReady FILE: the ready file a node writes once it serves.
waitReady() {
	for _ in $(seq 300); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	echo "no ready file $1" >&2
	return 1
}
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$@"; }

echo "== hub and edge"
"$tmp/bin/dt" node --keys "$net/keys" --data "$net/hub" --listen 127.0.0.1:0 --local \
	--ready-file "$tmp/hub.ready" 2>"$tmp/hub.log" &
pids+=($!)
waitReady "$tmp/hub.ready"
hub=$(field "$tmp/hub.ready" "listen[0]")
"$tmp/bin/dt" edge --keys "$net/keys" --data "$net/edge" --peer "$hub" --local --http 127.0.0.1:0 \
	--drain-wait 100ms --ready-file "$tmp/edge.ready" 2>"$tmp/edge.log" &
pids+=($!)
waitReady "$tmp/edge.ready"
edge=$(field "$tmp/edge.ready" "http")

echo "== publish"
site="$tmp/site"
mkdir -p "$site/css" "$site/data"
printf '<!doctype html><title>dt</title><h1>built by %s</h1>\n' "$rev" >"$site/index.html"
printf 'not here\n' >"$site/404.html"
for _ in $(seq 200); do echo 'body { font: 16px/1.5 system-ui; margin: 0 auto; max-width: 40em }'; done >"$site/css/site.css"
head -c 65536 /dev/urandom >"$site/data/random.bin"
"$tmp/bin/dt-publish" --keys "$net/keys" --peer "$hub" "$site" >/dev/null

echo "== record what the edge serves"
python3 - "$edge" "$net/expected.json" "$rev" <<'PY'
import hashlib, json, sys, urllib.request
edge, out, rev = sys.argv[1], sys.argv[2], sys.argv[3]
paths = ["/", "/index.html", "/css/site.css", "/data/random.bin"]  # asked without Accept-Encoding: identity
files = {}
for p in paths:
    with urllib.request.urlopen("http://" + edge + p) as r:
        files[p] = {"sha256": hashlib.sha256(r.read()).hexdigest(), "etag": r.headers["ETag"]}
json.dump({"release": rev, "files": files}, open(out, "w"), indent=2)
PY

echo "== stop"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
rm -f "$net"/*/dt.pid
tar -C "$net" -czf "$out" keys hub edge expected.json
echo "wrote $out ($(du -h "$out" | cut -f1))"
