package cli

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildInfo is what a binary knows of its own build, from the Go toolchain's build info: a
// release build (internal/release) stamps the module version; a build from a checkout carries
// the VCS revision.
type buildInfo struct {
	Version  string `json:"version"`            // module version, or "devel"
	Revision string `json:"revision,omitempty"` // VCS revision, when built from a checkout
	Time     string `json:"time,omitempty"`     // the revision's commit time
	Modified bool   `json:"modified,omitempty"` // built with uncommitted changes
	Go       string `json:"go"`                 // the Go version that built it
	Platform string `json:"platform"`           // GOOS/GOARCH
}

// Set at link time by release builds (internal/release, with -ldflags -X), which build with
// -buildvcs=false from a tree that may not be a checkout: the toolchain then records neither.
var (
	releaseVersion  string
	releaseRevision string
)

// readBuildInfo reads the running binary's build info.
func readBuildInfo() (b buildInfo) {
	b = buildInfo{Version: "devel", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	defer func() {
		if releaseVersion != "" {
			b.Version = releaseVersion
		}
		if releaseRevision != "" {
			b.Revision = releaseRevision
		}
	}()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	for _, kv := range info.Settings {
		switch kv.Key {
		case "vcs.revision":
			b.Revision = kv.Value
		case "vcs.time":
			b.Time = kv.Value
		case "vcs.modified":
			b.Modified = kv.Value == "true"
		}
	}
	return b
}

// String is the one-line form `dt version` prints.
func (b buildInfo) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "dt %s", b.Version)
	if b.Revision != "" {
		fmt.Fprintf(&s, " (revision %s", short(b.Revision))
		if b.Time != "" {
			fmt.Fprintf(&s, ", %s", b.Time)
		}
		if b.Modified {
			s.WriteString(", modified")
		}
		s.WriteString(")")
	}
	fmt.Fprintf(&s, " %s %s", b.Go, b.Platform)
	return s.String()
}

// short names the build in heartbeats and on the dashboard: the module version, or the VCS
// revision of a development build.
func (b buildInfo) short() string {
	if b.Version == "devel" && b.Revision != "" {
		v := "dt " + short(b.Revision)
		if b.Modified {
			v += "+dirty"
		}
		return v
	}
	return "dt " + b.Version
}

// logAttrs are the attributes a node logs its version with at start.
func (b buildInfo) logAttrs() []any {
	return []any{slog.String("version", b.Version), slog.String("revision", b.Revision), slog.String("go", b.Go)}
}

func runVersion(ctx context.Context, args []string, env *Env) error {
	var asJSON bool
	fs := newFlagSet(env, "version", "dt version [--json]",
		"Prints the version of this dt (dt --version prints the same): the module version of a release build, the VCS revision\n"+
			"of a build from a checkout, and the Go version and platform it was built for.")
	fs.BoolVar(&asJSON, "json", false, "print the version as JSON")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, ""); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(env.Stdout, readBuildInfo())
	}
	_, err := fmt.Fprintln(env.Stdout, readBuildInfo())
	return err
}
