#!/usr/bin/env bash
# Benchmarks the edge's HTTP serving against nginx, Caddy and Go's http.FileServer on this
# machine: same three files (1 KiB HTML, 100 KiB JS served as precompressed gzip, 10 MiB binary),
# same clients (wrk for HTTP/1.1, h2load for HTTPS with HTTP/2), interleaved rounds, all on
# 127.0.0.1; and new TLS 1.3 handshakes per second with the same ECDSA P-256 certificate (test
# "hs", edgebench's own client, a new connection per request). Prints req/s and MiB/s per server
# and the ratio to nginx. About 3 minutes.
#
# Usage: ./scripts/bench-edge.sh [edgebench flags]   e.g. -d 5s -rounds 3, -only h2, -only hs, -pin, -keep
#
# -pin runs the servers on CPU 0 and the clients on CPU 1: each server has one core to itself
# instead of contending with the client for both, which on a small machine decides the Go
# servers' figures as much as their work per request does (see internal/benchcmd/edgebench).
#
# Installs the peers with apt-get when they are missing (Debian; root or sudo). Every process
# the benchmark starts is stopped by its PID before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
policy=/usr/sbin/policy-rc.d
made_policy=
bin=$(mktemp -d)
trap 'rm -rf "$bin"; if [ -n "$made_policy" ]; then "${sudo[@]}" rm -f "$policy"; fi' EXIT
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v caddy >/dev/null || need+=(caddy)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
	echo "== apt-get install ${need[*]}"
	# Debian starts nginx and Caddy as services on install, listening on every interface; a
	# policy-rc.d that answers 101 keeps them stopped (Docker images ship one). Ours is removed
	# afterwards.
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod 755 "$policy"
		made_policy=1
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== go build ./internal/benchcmd/edgebench"
go build -o "$bin/edgebench" ./internal/benchcmd/edgebench
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other load skews the figures)"
"$bin/edgebench" "$@"
