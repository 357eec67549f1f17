package blobs

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/dt-cdn/dt/internal/testkit/needs"
)

// TestFullDiskTmpfs fills a real 1 MiB tmpfs. It needs root (to mount) and skips without it.
func TestFullDiskTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		needs.Skipf(t, "needs root to mount a tmpfs")
	}
	const fsSize = 1 << 20
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		needs.Skipf(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the unmount: the lock file is open

	free, err := s.DiskFree()
	if err != nil {
		t.Fatal(err)
	}
	if free == 0 || free > fsSize {
		t.Errorf("DiskFree on a %d-byte tmpfs = %d", fsSize, free)
	}

	// A blob larger than the filesystem fails and leaves nothing.
	rng := newRand(t)
	big, h := randomBlob(rng, 2*fsSize)
	if _, err := s.Put(h, bytes.NewReader(big)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put of 2 MiB on a 1 MiB tmpfs: %v, want ENOSPC", err)
	}
	assertEmpty(t, dir)
	if after, err := s.DiskFree(); err != nil || after != free {
		t.Errorf("DiskFree after the failed Put = %d, %v; want %d (space given back)", after, err, free)
	}

	// Fill it with small blobs until it is full: every Put either succeeds completely or fails
	// with ENOSPC and leaves nothing.
	var stored []Hash
	for i := 0; ; i++ {
		data, h := randomBlob(rng, 100<<10)
		_, err := s.Put(h, bytes.NewReader(data))
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, h)
		if i > 20 {
			t.Fatal("a 1 MiB tmpfs took more than 2 MiB")
		}
	}
	if len(stored) == 0 {
		t.Fatal("not even one 100 KiB blob fitted")
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left after ENOSPC: %q", tmp)
	}
	checkStore(t, s)
	if got := listAll(t, s); len(got) != len(stored) {
		t.Errorf("All = %d blobs, want the %d that were stored", len(got), len(stored))
	}

	// Deleting makes room again.
	if err := s.Delete(stored[0]); err != nil {
		t.Fatal(err)
	}
	data, h2 := randomBlob(rng, 50<<10)
	if err := s.PutBytes(h2, data); err != nil {
		t.Errorf("Put after freeing space: %v", err)
	}
}
