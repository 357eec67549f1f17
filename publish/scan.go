package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// maxRulesFile bounds the size of _redirects and _headers.
const maxRulesFile = 16 << 20

// reportEvery is how many bytes a file may be read between two progress reports.
const reportEvery = 1 << 20

// scanner is the state of one Scan.
type scanner struct {
	dir  string
	root *os.Root
	opts ScanOptions

	tmpMu  sync.Mutex
	tmpDir string // created on first use; guarded by tmpMu

	progMu   sync.Mutex
	prog     Progress // guarded by progMu
	reported int64    // prog.Bytes at the last report; guarded by progMu

	// reuse maps the raw hash of each file of opts.Previous that has variants to that file, whose
	// variants (and RawFrom) a file with the same content takes; read-only.
	reuse map[blobs.Hash]site.File
}

// Scan reads the site in dir and returns the plan to publish it: the manifest, and where the
// bytes of every blob are. It reads every file once, with opts.Workers goroutines: each file is
// hashed (SHA-256), split into content-defined chunks when it is ChunkThreshold bytes or more,
// and, when its type is compressible, precompressed into br, zstd and gzip variants (kept when 5%
// smaller). The root's _redirects and _headers are parsed into the manifest's rules, not
// published as files; 404.html files are ordinary files (the edge serves the nearest one).
//
// Nothing is sent and dir is not changed. Scan fails, listing every offending file, on hidden
// files, symbolic links, special files and names that cannot be site paths (see ScanOptions); on
// a rules file that does not parse (naming file:line); and on a file that changes while it is
// read. A site without /index.html is only a warning (Plan.Warnings).
//
// The plan holds the directory open and may hold temporary files: Close it.
func Scan(ctx context.Context, dir string, opts ScanOptions) (*Plan, error) {
	opts = opts.withDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("publish: open site: %w", err)
	}
	s := &scanner{dir: dir, root: root, opts: opts}
	if opts.Previous != nil {
		s.reuse = map[blobs.Hash]site.File{}
		for _, f := range opts.Previous.Files {
			if len(f.Variants) > 0 {
				s.reuse[f.Hash] = f
			}
		}
	}
	done := false
	defer func() {
		if !done {
			s.cleanup()
		}
	}()
	w := &walker{root: root, opts: &s.opts}
	if err := w.walk(); err != nil {
		return nil, err
	}
	m := &site.Manifest{
		Version: site.ManifestVersion, Created: opts.Created, Files: make(map[string]site.File, len(w.files)),
		SPA: opts.SPA, CleanURLs: opts.CleanURLs,
	}
	if opts.Previous != nil && opts.KeepSPA {
		m.SPA = opts.Previous.SPA
	}
	if opts.Previous != nil && opts.KeepCleanURLs {
		m.CleanURLs = opts.Previous.CleanURLs
	}
	if err := s.readRules(w.rules, m); err != nil {
		return nil, err
	}
	if len(w.files) == 0 && len(m.Redirects) == 0 {
		return nil, fmt.Errorf("%w: %s holds no files", ErrEmpty, dir)
	}
	results, compression, err := s.processAll(ctx, w.files)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Manifest: m, Sources: map[blobs.Hash]Source{}, Warnings: w.warnings, Dir: dir, Compression: compression, root: root, tmpDir: s.tmpDir}
	for i, e := range w.files {
		m.Files["/"+e.rel] = results[i].file
		for _, bs := range results[i].sources {
			if _, ok := plan.Sources[bs.h]; !ok {
				plan.Sources[bs.h] = bs.src
			} else if bs.src.Temp != "" {
				os.Remove(bs.src.Temp) // the same variant bytes from another file
			}
		}
	}
	if _, ok := m.Files["/index.html"]; !ok {
		plan.Warnings = append(plan.Warnings, "no index.html at the root: the site's home page will answer 404")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("publish: the scanned site is not a valid deploy: %w", err)
	}
	done = true
	return plan, nil
}

// readRules parses the root's _redirects and _headers into m.
func (s *scanner) readRules(found map[string]bool, m *site.Manifest) error {
	var errs []error
	if found[redirectsFile] {
		err := s.parseRules(redirectsFile, func(name string, r io.Reader) (err error) {
			m.Redirects, err = site.ParseRedirects(name, r)
			return err
		})
		errs = append(errs, err)
	}
	if found[headersFile] {
		err := s.parseRules(headersFile, func(name string, r io.Reader) (err error) {
			m.Headers, err = site.ParseHeaders(name, r)
			return err
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parseRules opens a rules file and parses it under its path as the user knows it, so that
// errors read "public/_redirects:3: …".
func (s *scanner) parseRules(rel string, parse func(name string, r io.Reader) error) error {
	f, err := s.root.Open(rel)
	if err != nil {
		return fmt.Errorf("publish: open %s: %w", rel, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("publish: stat %s: %w", rel, err)
	} else if fi.Size() > maxRulesFile {
		return fmt.Errorf("publish: %s: %d bytes, over the limit of %d", rel, fi.Size(), maxRulesFile)
	}
	return parse(filepath.Join(s.dir, rel), io.LimitReader(f, maxRulesFile))
}

// processAll processes the files on opts.Workers goroutines and returns their results in order.
// The first error stops the scan.
func (s *scanner) processAll(ctx context.Context, files []entry) ([]fileResult, Compression, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.prog.FilesTotal = len(files)
	for _, e := range files {
		s.prog.BytesTotal += e.size
	}
	compression := s.opts.Compression.resolve(s.prog.BytesTotal)
	results := make([]fileResult, len(files))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(s.opts.Workers, len(files)) {
		wg.Go(func() {
			enc, err := newEncoders(compression)
			if err != nil {
				cancel(err)
				return
			}
			defer enc.close()
			for i := range jobs {
				if ctx.Err() != nil {
					continue // drain: the scan has failed
				}
				res, err := s.processFile(ctx, enc, files[i])
				if err != nil {
					cancel(err)
					continue
				}
				results[i] = res
				s.fileDone()
			}
		})
	}
feed:
	for i := range files {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, fmt.Errorf("publish: scan: %w", err)
		}
		return nil, 0, err
	}
	return results, compression, nil
}

// tempFile creates a file in the scan's temporary directory, creating the directory first.
func (s *scanner) tempFile() (*os.File, error) {
	s.tmpMu.Lock()
	if s.tmpDir == "" {
		d, err := os.MkdirTemp(s.opts.TempDir, "dt-publish-*")
		if err != nil {
			s.tmpMu.Unlock()
			return nil, fmt.Errorf("publish: temporary directory: %w", err)
		}
		s.tmpDir = d
	}
	dir := s.tmpDir
	s.tmpMu.Unlock()
	f, err := os.CreateTemp(dir, "variant-*")
	if err != nil {
		return nil, fmt.Errorf("publish: temporary file: %w", err)
	}
	return f, nil
}

// cleanup releases what a failed scan holds.
func (s *scanner) cleanup() {
	s.root.Close()
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
}

// addBytes counts bytes read and reports progress every reportEvery bytes.
func (s *scanner) addBytes(n int64) {
	if n == 0 {
		return
	}
	s.progMu.Lock()
	defer s.progMu.Unlock()
	s.prog.Bytes += n
	if s.opts.Progress != nil && s.prog.Bytes-s.reported >= reportEvery {
		s.report()
	}
}

// fileDone counts a finished file and reports progress.
func (s *scanner) fileDone() {
	s.progMu.Lock()
	defer s.progMu.Unlock()
	s.prog.Files++
	if s.opts.Progress != nil {
		s.report()
	}
}

// report calls the progress callback; progMu is held, so calls never overlap.
func (s *scanner) report() {
	s.reported = s.prog.Bytes
	s.opts.Progress(s.prog)
}
