#!/usr/bin/env bash
# Runs every check the project has, after installing what they need on a fresh Debian machine
# (chromium for the browser tests, through apt-get as root or with sudo).
# Usage: ./scripts/test.sh            (gofmt, vet, staticcheck, then all tests with the race detector)
#        DT_SHORT=1 ./scripts/test.sh (skip the slow end-to-end and fault tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed (https://go.dev/dl/); dt needs Go $(sed -n 's/^go //p' go.mod)" >&2
	exit 1
fi

# root, or sudo when there is one; apt-get needs either.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		return 1
	fi
}

# The dashboard's tests drive a real headless browser: Debian's chromium. Those tests fail,
# not skip, when it is missing (DT_REQUIRE_BROWSER=1), so that a run that could not install it
# says so; DT_REQUIRE_BROWSER=0 runs without them on a machine that cannot have one.
export DT_REQUIRE_BROWSER="${DT_REQUIRE_BROWSER:-1}"
if [ "$DT_REQUIRE_BROWSER" = 1 ] && [ ! -x /usr/bin/chromium ]; then
	echo "== apt-get install chromium (for the dashboard's browser tests)"
	if ! { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; then
		echo "test.sh: could not install chromium (needs apt-get as root or through sudo);" >&2
		echo "test.sh: install it, or run with DT_REQUIRE_BROWSER=0 to skip the browser tests" >&2
		exit 1
	fi
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
# The release tool is a module of its own (see internal/release/doc.go).
(cd internal/release && go vet ./...)

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
