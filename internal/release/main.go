package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// target is one platform a release is built for.
type target struct{ goos, goarch string }

func (t target) String() string { return t.goos + "/" + t.goarch }

// binaries are the commands a release ships, by package path in the dt module.
var binaries = []string{"dt", "dt-publish"}

// config is what one run builds.
type config struct {
	repo     string    // the dt module's root
	out      string    // where the release files go
	version  string    // e.g. v1.4.0
	revision string    // VCS revision, if known
	mtime    time.Time // every file's time
	targets  []target
	debs     bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], log); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	repo := fs.String("repo", ".", "the dt repository's root `DIR`")
	out := fs.String("out", "dist", "write the release files into `DIR` (relative to --repo)")
	version := fs.String("version", "", "the release `VERSION`, such as v1.4.0 (default: git describe, or v0.0.0-dev)")
	targets := fs.String("targets", "linux/amd64,linux/arm64,darwin/arm64", "comma-separated `GOOS/GOARCH` list")
	debs := fs.Bool("deb", true, "also build a Debian package for each linux target")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := config{repo: *repo, debs: *debs}
	var err error
	if cfg.repo, err = filepath.Abs(cfg.repo); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.repo, "cmd", "dt")); err != nil {
		return fmt.Errorf("--repo %s is not the dt repository (no cmd/dt): %w", cfg.repo, err)
	}
	cfg.out = *out
	if !filepath.IsAbs(cfg.out) {
		cfg.out = filepath.Join(cfg.repo, cfg.out)
	}
	for _, t := range strings.Split(*targets, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(t), "/")
		if !ok || goos == "" || goarch == "" {
			return fmt.Errorf("--targets: %q is not GOOS/GOARCH", t)
		}
		cfg.targets = append(cfg.targets, target{goos, goarch})
	}
	cfg.version, cfg.revision, cfg.mtime = describe(ctx, cfg.repo, *version)
	return release(ctx, cfg, log)
}

// describe finds the version, the revision and the files' time from git and
// SOURCE_DATE_EPOCH, with fallbacks for a tree that is not a checkout.
func describe(ctx context.Context, repo, version string) (string, string, time.Time) {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
		b, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if version == "" {
		version = git("describe", "--tags", "--always", "--dirty")
		if !strings.HasPrefix(version, "v") {
			// No tag yet: a pseudo-version that sorts below every release.
			version = "v0.0.0-dev"
			if rev := git("rev-parse", "--short=12", "HEAD"); rev != "" {
				version += "+" + rev
			}
		}
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = git("log", "-1", "--format=%ct")
	}
	sec, _ := strconv.ParseInt(epoch, 10, 64)
	return version, git("rev-parse", "HEAD"), time.Unix(sec, 0).UTC()
}

func release(ctx context.Context, cfg config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	var files []string
	for _, t := range cfg.targets {
		bin, err := os.MkdirTemp("", "dt-release-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(bin)
		for _, name := range binaries {
			log.Info("Building", slog.String("binary", name), slog.String("target", t.String()), slog.String("version", cfg.version))
			if err := build(ctx, cfg, t, name, filepath.Join(bin, name)); err != nil {
				return err
			}
		}
		archive := filepath.Join(cfg.out, fmt.Sprintf("dt_%s_%s_%s.tar.gz", strings.TrimPrefix(cfg.version, "v"), t.goos, t.goarch))
		if err := writeArchive(archive, cfg, bin); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(archive), err)
		}
		files = append(files, archive)
		if cfg.debs && t.goos == "linux" {
			deb, err := writeDeb(cfg, t, bin)
			if err != nil {
				return fmt.Errorf("debian package for %s: %w", t, err)
			}
			files = append(files, deb)
		}
	}
	sums := filepath.Join(cfg.out, "SHA256SUMS")
	if err := writeSums(sums, files); err != nil {
		return err
	}
	for _, f := range append(files, sums) {
		fmt.Println(f)
	}
	return nil
}

// build compiles one binary, static and reproducible.
func build(ctx context.Context, cfg config, t target, name, out string) error {
	const pkg = "github.com/dt-cdn/dt/internal/cli"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.releaseVersion=%s -X %s.releaseRevision=%s", pkg, cfg.version, pkg, cfg.revision)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/"+name)
	cmd.Dir = cfg.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.goos, "GOARCH="+t.goarch, "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w", name, t, err)
	}
	return nil
}

// archiveFile is one file of an archive: where it comes from and its mode.
type archiveFile struct {
	name, src string
	mode      int64
}

// archiveFiles lists an archive's contents in the order they are written.
func archiveFiles(cfg config, bin string) []archiveFile {
	files := []archiveFile{
		{"dt", filepath.Join(bin, "dt"), 0o755},
		{"dt-publish", filepath.Join(bin, "dt-publish"), 0o755},
		{"README.md", filepath.Join(cfg.repo, "README.md"), 0o644},
		{"docs/operators-guide.md", filepath.Join(cfg.repo, "docs", "operators-guide.md"), 0o644},
	}
	for _, u := range units {
		files = append(files, archiveFile{"systemd/" + u, filepath.Join(cfg.repo, "packaging", "systemd", u), 0o644})
		files = append(files, archiveFile{"default/" + strings.TrimSuffix(u, ".service"), filepath.Join(cfg.repo, "packaging", "default", strings.TrimSuffix(u, ".service")), 0o644})
	}
	return files
}

// writeArchive writes a tar.gz whose bytes depend only on the files' contents, cfg.version and
// cfg.mtime: the entries are in a fixed order under one top directory, owned by root, with one
// time, and the gzip header carries no name and that time.
func writeArchive(path string, cfg config, bin string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	gz, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	gz.ModTime = cfg.mtime
	tw := tar.NewWriter(gz)
	top := strings.TrimSuffix(filepath.Base(path), ".tar.gz")
	files := archiveFiles(cfg, bin)
	dirs := []string{""}
	for _, af := range files {
		if d := filepath.Dir(af.name); d != "." && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		name := top + "/"
		if d != "" {
			name += d + "/"
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: cfg.mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, af := range files {
		body, err := os.ReadFile(af.src)
		if err != nil {
			return err
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + af.name, Mode: af.mode, Size: int64(len(body)), ModTime: cfg.mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// writeSums writes SHA256SUMS in the format sha256sum -c reads.
func writeSums(path string, files []string) error {
	var b strings.Builder
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(name))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
