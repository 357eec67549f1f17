#!/usr/bin/env bash
# Runs every check the project has, after installing what they need on a fresh Debian machine.
# Usage: ./scripts/test.sh            (gofmt, vet, staticcheck, then all tests with the race detector)
#        DT_SHORT=1 ./scripts/test.sh (skip the slow end-to-end and fault tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed (https://go.dev/dl/); dt needs Go $(sed -n 's/^go //p' go.mod)" >&2
	exit 1
fi

echo "== go mod download"
go mod download

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	printf 'gofmt would change:\n%s\n' "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== build h2spec (HTTP/2 conformance suite, pinned in go.mod as a tool)"
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
go build -o "$tools/h2spec" github.com/summerwind/h2spec/cmd/h2spec
export DT_H2SPEC="$tools/h2spec"

echo "== go test -race"
short=()
[ -n "${DT_SHORT:-}" ] && short=(-short)
go test -race -count=1 -timeout 20m "${short[@]}" ./...
