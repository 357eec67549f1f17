#!/usr/bin/env bash
# Builds dt's release files into dist/: tar.gz archives for linux/amd64, linux/arm64 and
# darwin/arm64, Debian packages for the linux targets, and SHA256SUMS. Reproducible: the same
# commit and Go toolchain give the same bytes (see internal/release/doc.go).
# Usage: ./scripts/release.sh [--version v1.4.0] [--targets linux/amd64] [--deb=false] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
repo=$(pwd)
# The release tool is a module of its own (its packaging library stays out of dt's dependencies).
cd internal/release
exec go run . --repo "$repo" "$@"
