package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dt-cdn/dt/site"
)

// Names of the rules files read at the root of a site (Netlify's conventions).
const (
	redirectsFile = "_redirects"
	headersFile   = "_headers"
)

// maxWalkErrors is how many refused files Scan lists before it stops walking.
const maxWalkErrors = 20

// entry is a regular file found by the walk.
type entry struct {
	rel  string // slash-separated, relative to the site directory: "css/site.css"
	size int64  // from stat; the read is checked against it
}

// walker lists the files of a site directory through an os.Root, so that no name it opens can
// resolve outside the directory, whatever symbolic links or renames happen meanwhile.
type walker struct {
	root     *os.Root
	opts     *ScanOptions
	files    []entry
	rules    map[string]bool // rules files found at the root, by name
	warnings []string
	errs     []error
}

// walk lists the directory; it returns the refused files, joined.
func (w *walker) walk() error {
	fi, err := w.root.Stat(".")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	w.rules = map[string]bool{}
	w.walkDir("", []fs.FileInfo{fi})
	return errors.Join(w.errs...)
}

// refuse records a refused file and reports whether the walk should go on.
func (w *walker) refuse(err error) bool {
	w.errs = append(w.errs, err)
	return len(w.errs) < maxWalkErrors
}

// walkDir lists the directory rel ("" for the root); ancestors are the directories on the way
// down, to notice a followed link that leads back up (a loop).
func (w *walker) walkDir(rel string, ancestors []fs.FileInfo) bool {
	name := rel
	if name == "" {
		name = "."
	}
	f, err := w.root.Open(name)
	if err != nil {
		return w.refuse(fmt.Errorf("publish: open directory %s: %w", name, err))
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return w.refuse(fmt.Errorf("publish: read directory %s: %w", name, err))
	}
	// Directory order is whatever the filesystem keeps; sort for stable errors and plans.
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, de := range ents {
		if !w.visit(rel, de, ancestors) {
			return false
		}
	}
	return true
}

// visit handles one directory entry; it reports whether the walk should go on.
func (w *walker) visit(dir string, de fs.DirEntry, ancestors []fs.FileInfo) bool {
	name := de.Name()
	rel := path.Join(dir, name)
	if why := nameProblem(name); why != "" {
		return w.refuse(fmt.Errorf("%w: %q: %s", ErrUnsafeName, rel, why))
	}
	if strings.HasPrefix(name, ".") {
		if why := w.hiddenProblem(dir, name); why != "" {
			return w.refuse(fmt.Errorf("%w: %s: %s", ErrHidden, rel, why))
		}
	}
	if err := site.CheckPath("/" + rel); err != nil {
		return w.refuse(fmt.Errorf("%w: %w", ErrUnsafeName, err))
	}
	typ := de.Type()
	var info fs.FileInfo
	if typ&fs.ModeSymlink != 0 {
		if !w.opts.FollowSymlinks {
			return w.refuse(fmt.Errorf("%w: %s is a symbolic link (allow links inside the site with FollowSymlinks)", ErrSymlink, rel))
		}
		// Root.Stat follows the link but refuses any step that leaves the directory, so a link
		// to /etc/passwd or to ../elsewhere fails here, as does a chain of links that loops.
		fi, err := w.root.Stat(rel)
		if err != nil {
			return w.refuse(fmt.Errorf("%w: %s cannot be followed inside the site: %w", ErrSymlink, rel, err))
		}
		info, typ = fi, fi.Mode().Type()
	}
	switch {
	case typ.IsDir():
		if info == nil {
			fi, err := de.Info()
			if err != nil {
				return w.refuse(fmt.Errorf("publish: stat %s: %w", rel, err))
			}
			info = fi
		}
		for _, a := range ancestors {
			if os.SameFile(a, info) {
				return w.refuse(fmt.Errorf("%w: %s leads back to a directory above it (a loop)", ErrSymlink, rel))
			}
		}
		return w.walkDir(rel, append(slices.Clip(ancestors), info))
	case typ.IsRegular():
		if info == nil {
			fi, err := de.Info()
			if err != nil {
				return w.refuse(fmt.Errorf("publish: stat %s: %w", rel, err))
			}
			info = fi
		}
		w.addFile(rel, info.Size())
		return true
	default:
		return w.refuse(fmt.Errorf("%w: %s is a %v", ErrNotRegular, rel, typ))
	}
}

// addFile records a regular file, setting the root's rules files aside.
func (w *walker) addFile(rel string, size int64) {
	switch {
	case rel == redirectsFile || rel == headersFile:
		w.rules[rel] = true
		return
	case path.Base(rel) == redirectsFile || path.Base(rel) == headersFile:
		w.warnings = append(w.warnings, fmt.Sprintf("%s is published as a file: only the site root's %s holds rules", rel, path.Base(rel)))
	}
	if isEnvFile(path.Base(rel)) {
		w.warnings = append(w.warnings, fmt.Sprintf("%s is published: environment files often hold secrets", rel))
	}
	w.files = append(w.files, entry{rel: rel, size: size})
}

// hiddenProblem says why a hidden name in dir is refused, or "" when it is published.
func (w *walker) hiddenProblem(dir, name string) string {
	switch {
	case strings.EqualFold(name, ".git"):
		return "repository data is never published, even with IncludeHidden"
	case dir == "" && name == ".well-known":
		return "" // RFC 8615; its own hidden files are checked as they come
	case w.opts.IncludeHidden:
		return ""
	case isEnvFile(name):
		return "environment files often hold secrets (IncludeHidden publishes hidden files)"
	default:
		return "hidden files are not published (IncludeHidden publishes them)"
	}
}

// isEnvFile reports whether name is a dotenv file: .env, .env.local, .env.production….
func isEnvFile(name string) bool {
	return name == ".env" || strings.HasPrefix(name, ".env.")
}

// nameProblem checks one file name as the filesystem gives it, before it becomes part of a site
// path; it returns what is wrong, or "".
func nameProblem(name string) string {
	if !utf8.ValidString(name) {
		return "not valid UTF-8"
	}
	for _, r := range name {
		switch {
		case r == 0:
			return "contains NUL"
		case unicode.IsControl(r):
			return fmt.Sprintf("contains control character %U", r)
		case r == '\\':
			return "contains a backslash"
		}
	}
	if name == "." || name == ".." || strings.Contains(name, "/") {
		return "not a file name" // no real directory lists these
	}
	return ""
}
