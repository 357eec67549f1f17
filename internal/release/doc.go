// Command release builds dt's release files for people who install dt without a Go toolchain:
// for each of linux/amd64, linux/arm64 and darwin/arm64 a tar.gz of dt and dt-publish (with the
// systemd units and the operators' guide), for each linux target a Debian package, and
// SHA256SUMS over all of them. Run it from the repository root as ./scripts/release.sh.
//
// The files are reproducible: the same source, version and Go toolchain give the same bytes.
// Binaries are static (CGO_ENABLED=0) and built with -trimpath, -buildvcs=false and an empty
// build id; the version and revision are linked in with -X. Every file in an archive or a
// package has the same owner (root), its mode, and the time of SOURCE_DATE_EPOCH (the last
// commit's time by default), and entries are written in a fixed order.
//
// It is a module of its own so that the packaging library (nfpm) and its dependencies stay out
// of the dependency graph of the binaries it packages.
package main
