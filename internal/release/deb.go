package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

// units are the systemd units in packaging/systemd, each with an optional settings file of the
// same name in packaging/default.
var units = []string{"dt-edge.service", "dt-redirector.service", "dt-dns.service"}

// postinst creates the dt system user and gives it the keys directory through its group: the
// units run as dt and read /etc/dt/keys, whose files stay owned by root (docs/operators-guide.md,
// "Keys"). The user is created here, not shipped in the package, because its id differs by
// machine; the group of /etc/dt/keys can only be set once it exists.
const postinst = `#!/bin/sh
set -e
if ! getent passwd dt >/dev/null; then
	if command -v adduser >/dev/null; then
		adduser --system --group --home /var/lib/dt --no-create-home --quiet dt
	else
		useradd --system --user-group --home-dir /var/lib/dt --no-create-home --shell /usr/sbin/nologin dt
	fi
fi
chown root:dt /etc/dt/keys
chmod 0750 /etc/dt/keys
for key in /etc/dt/keys/network.key; do
	if [ -f "$key" ]; then
		chown root:dt "$key"
		chmod 0640 "$key"
	fi
done
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
`

// writeDeb writes the Debian package of a linux target and returns its path.
func writeDeb(cfg config, t target, bin string) (path string, err error) {
	dir, err := os.MkdirTemp("", "dt-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "postinst")
	if err := os.WriteFile(script, []byte(postinst), 0o755); err != nil {
		return "", err
	}
	info := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: cfg.mtime}
	}
	contents := files.Contents{
		{Source: filepath.Join(bin, "dt"), Destination: "/usr/bin/dt", FileInfo: info(0o755)},
		{Source: filepath.Join(bin, "dt-publish"), Destination: "/usr/bin/dt-publish", FileInfo: info(0o755)},
		{Destination: "/etc/dt", Type: files.TypeDir, FileInfo: info(0o755)},
		// Group dt is set by postinst, once the group exists.
		{Destination: "/etc/dt/keys", Type: files.TypeDir, FileInfo: info(0o750)},
		{Source: filepath.Join(cfg.repo, "docs", "operators-guide.md"), Destination: "/usr/share/doc/dt/operators-guide.md", FileInfo: info(0o644)},
	}
	for _, u := range units {
		name := strings.TrimSuffix(u, ".service")
		contents = append(contents,
			&files.Content{Source: filepath.Join(cfg.repo, "packaging", "systemd", u), Destination: "/lib/systemd/system/" + u, FileInfo: info(0o644)},
			&files.Content{Source: filepath.Join(cfg.repo, "packaging", "default", name), Destination: "/etc/default/" + name,
				Type: files.TypeConfigNoReplace, FileInfo: info(0o644)})
	}
	pkg := &nfpm.Info{
		Name:        "dt",
		Arch:        t.goarch,
		Platform:    "linux",
		Version:     cfg.version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "dt maintainers <dt@example.invalid>",
		Description: "replicated static-file CDN for a few VPSes: edges, redirector, DNS and publishing",
		Homepage:    "https://github.com/dt-cdn/dt",
		License:     "see /usr/share/doc/dt",
		MTime:       cfg.mtime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  nfpm.Scripts{PostInstall: script},
		},
	}
	pkg = nfpm.WithDefaults(pkg)
	if err := nfpm.PrepareForPackager(pkg, "deb"); err != nil {
		return "", err
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	path = filepath.Join(cfg.out, packager.ConventionalFileName(pkg))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := packager.Package(pkg, f); err != nil {
		return "", fmt.Errorf("package: %w", err)
	}
	return path, nil
}
