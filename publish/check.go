package publish

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dt-cdn/dt/site"
)

// CheckDir checks what a publish can check without the network, so that a typo in the directory
// or a rules file costs no connection and does not look like a network problem: that dir is a
// directory, and that its _redirects and _headers parse. It does not walk the site: Scan refuses
// the files it cannot publish.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("site directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("site directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory: give the directory that holds the site (its index.html)", dir)
	}
	rules := []struct {
		name  string
		parse func(string, io.Reader) error
	}{
		{"_redirects", func(n string, r io.Reader) error { _, err := site.ParseRedirects(n, r); return err }},
		{"_headers", func(n string, r io.Reader) error { _, err := site.ParseHeaders(n, r); return err }},
	}
	for _, rule := range rules {
		if err := checkRules(filepath.Join(dir, rule.name), rule.parse); err != nil {
			return err
		}
	}
	return nil
}

// checkRules parses the rules file at path, if there is one.
func checkRules(path string, parse func(string, io.Reader) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return parse(path, f)
}
