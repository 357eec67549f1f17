package fdcache

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxIdle is how many files a Cache keeps open while unused when Config.MaxIdle is
// zero. A thousand is nginx's documented example for open_file_cache: it covers the hot files
// of many sites, and it is small next to a server's descriptor limit once raised to the hard
// limit (commonly 524,288 or more). A process with a lower limit should pass what its other
// descriptors leave (the edge does: see edge's openFiles).
const DefaultMaxIdle = 1000

// DefaultMaxIdleTime is how long a Cache keeps a file no one uses when Config.MaxIdleTime is
// zero: nginx's open_file_cache default (inactive=60s). It bounds how long the disk space of
// a removed file stays taken while traffic goes on.
const DefaultMaxIdleTime = time.Minute

// Opener opens the file of a key, positioned anywhere: the cache reads it only by offset.
// It is called from many goroutines at once.
type Opener[K comparable] interface {
	Open(key K) (*os.File, error)
}

// Config configures a Cache.
type Config struct {
	// MaxIdle bounds the files kept open while no one holds them. More keeps more opens
	// away and holds more descriptors (and the disk space of removed files) for longer.
	// Zero means DefaultMaxIdle; negative keeps none: every Acquire opens, every last
	// Release closes.
	MaxIdle int
	// MaxIdleTime closes a file unused for this long, at the cache's next Acquire or Release
	// (there is no timer: a cache nobody uses keeps its files until Close). Longer saves
	// more opens of files used now and then; shorter gives back the disk space of removed
	// files sooner. Zero means DefaultMaxIdleTime; negative keeps files however long unused.
	MaxIdleTime time.Duration
}

// Stats counts what a Cache did. The counters only grow; Open is the files open now.
type Stats struct {
	Hits    atomic.Uint64 // Acquire found the file open
	Misses  atomic.Uint64 // Acquire opened the file (or failed to)
	Evicted atomic.Uint64 // idle files closed to keep within MaxIdle, or unused for MaxIdleTime
	Open    atomic.Int64  // files open now, held or idle
}

// Cache keeps files open by key. It is safe for concurrent use.
type Cache[K comparable] struct {
	maxIdle     int
	maxIdleTime time.Duration    // ≤0: none
	now         func() time.Time // time.Now; tests set their own
	stats       Stats

	mu     sync.Mutex
	files  map[K]*File[K] // guarded by mu: the files kept, held or idle
	idle   list[K]        // guarded by mu: kept files no one holds, most recently used first
	closed bool           // guarded by mu
}

// New returns an empty cache.
func New[K comparable](cfg Config) *Cache[K] {
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.MaxIdleTime == 0 {
		cfg.MaxIdleTime = DefaultMaxIdleTime
	}
	return &Cache[K]{maxIdle: max(cfg.MaxIdle, 0), maxIdleTime: cfg.MaxIdleTime, now: time.Now, files: map[K]*File[K]{}}
}

// Stats returns the cache's counters, for metrics.
func (c *Cache[K]) Stats() *Stats { return &c.stats }

// File is an open file held from Acquire to Release. Its descriptor must not be closed, nor
// its offset relied on: readers read by offset (pread(2), sendfile(2) with an offset).
type File[K comparable] struct {
	c    *Cache[K]
	key  K
	f    *os.File
	fd   int
	size int64
	// guarded by c.mu:
	refs       int
	kept       bool      // in c.files; false for a file opened past the cache, closed on Release
	released   time.Time // when it last became idle
	prev, next *File[K]
}

// Fd returns the file's descriptor, valid until Release.
func (f *File[K]) Fd() int { return f.fd }

// Size returns the file's size when it was opened.
func (f *File[K]) Size() int64 { return f.size }

// ReadAt reads from the file at off; it is safe alongside other readers of the same file.
func (f *File[K]) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Name returns the name the file was opened by.
func (f *File[K]) Name() string { return f.f.Name() }

// Acquire returns the open file of key, opening it by o if the cache holds none. The caller
// must Release it once done.
func (c *Cache[K]) Acquire(key K, o Opener[K]) (*File[K], error) {
	c.mu.Lock()
	if f := c.files[key]; f != nil {
		if f.refs == 0 {
			c.idle.remove(f)
		}
		f.refs++
		c.mu.Unlock()
		c.stats.Hits.Add(1)
		return f, nil
	}
	var expired []*File[K]
	if c.maxIdleTime > 0 && c.idle.len > 0 {
		expired = c.evictLocked(c.now())
	}
	c.mu.Unlock()
	c.closeEvicted(expired)
	c.stats.Misses.Add(1)
	f, err := c.open(key, o)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if other := c.files[key]; other != nil {
		// Opened meanwhile by another caller: this one is used once and closed.
		return f, nil
	}
	if !c.closed && c.maxIdle > 0 {
		f.kept = true
		c.files[key] = f
	}
	return f, nil
}

// open opens a file held once, not yet kept.
func (c *Cache[K]) open(key K, o Opener[K]) (*File[K], error) {
	osf, err := o.Open(key)
	if err != nil {
		return nil, err
	}
	fi, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("fdcache: stat %s: %w", osf.Name(), err)
	}
	c.stats.Open.Add(1)
	// Fd leaves a regular file as it is (the runtime's poller does not take those), and f
	// keeps the descriptor open until closeFile.
	return &File[K]{c: c, key: key, f: osf, fd: int(osf.Fd()), size: fi.Size(), refs: 1}, nil
}

// Release gives back a file Acquire returned. The file must not be used afterwards.
func (f *File[K]) Release() {
	c := f.c
	c.mu.Lock()
	f.refs--
	if f.refs > 0 {
		c.mu.Unlock()
		return
	}
	if !f.kept {
		c.mu.Unlock()
		c.closeFile(f)
		return
	}
	f.released = c.now()
	c.idle.pushFront(f)
	evict := c.evictLocked(f.released)
	c.mu.Unlock()
	c.closeEvicted(evict)
}

// evictLocked takes out of the cache the idle files past MaxIdle, least recently used first,
// and those unused for MaxIdleTime, and returns them to be closed.
func (c *Cache[K]) evictLocked(now time.Time) []*File[K] {
	var evict []*File[K]
	for old := c.idle.back(); old != nil; old = c.idle.back() {
		expired := c.maxIdleTime > 0 && now.Sub(old.released) >= c.maxIdleTime
		if c.idle.len <= c.maxIdle && !expired {
			break
		}
		c.idle.remove(old)
		delete(c.files, old.key)
		old.kept = false
		evict = append(evict, old)
	}
	return evict
}

func (c *Cache[K]) closeEvicted(evict []*File[K]) {
	for _, old := range evict {
		c.stats.Evicted.Add(1)
		c.closeFile(old)
	}
}

func (c *Cache[K]) closeFile(f *File[K]) {
	f.f.Close()
	c.stats.Open.Add(-1)
}

// Close closes every idle file now and every held one when it is released; the cache keeps
// none from then on (Acquire still opens). It is safe to call more than once.
func (c *Cache[K]) Close() error {
	c.mu.Lock()
	c.closed = true
	var idle []*File[K]
	for f := c.idle.back(); f != nil; f = c.idle.back() {
		c.idle.remove(f)
		idle = append(idle, f)
	}
	for k, f := range c.files {
		f.kept = false
		delete(c.files, k)
	}
	c.mu.Unlock()
	var errs []error
	for _, f := range idle {
		if err := f.f.Close(); err != nil {
			errs = append(errs, err)
		}
		c.stats.Open.Add(-1)
	}
	return errors.Join(errs...)
}

// list is a doubly linked list of files through their prev and next fields.
type list[K comparable] struct {
	head, tail *File[K]
	len        int
}

func (l *list[K]) pushFront(f *File[K]) {
	f.prev, f.next = nil, l.head
	if l.head != nil {
		l.head.prev = f
	} else {
		l.tail = f
	}
	l.head = f
	l.len++
}

func (l *list[K]) remove(f *File[K]) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
	l.len--
}

func (l *list[K]) back() *File[K] { return l.tail }
