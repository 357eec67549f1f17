package blobs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

var benchSizes = []struct {
	name string
	size int
	ring int // distinct blobs kept in memory; deleted (timer stopped) when all were put
}{
	{"1KiB", 1 << 10, 256},
	{"100KiB", 100 << 10, 64},
	{"10MiB", 10 << 20, 4},
}

// benchBlobs returns n distinct blobs of size bytes and their hashes.
func benchBlobs(b testing.TB, n, size int) ([][]byte, []Hash) {
	base, _ := randomBlob(newRand(b), size)
	blobs := make([][]byte, n)
	hashes := make([]Hash, n)
	for i := range blobs {
		blobs[i] = bytes.Clone(base)
		binary.LittleEndian.PutUint32(blobs[i], uint32(i))
		hashes[i] = Sum(blobs[i])
	}
	return blobs, hashes
}

func benchStore(b *testing.B, opts Options) *Store {
	s, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// deleteAll removes the given blobs with the timer stopped, so they can be put again.
func deleteAll(b *testing.B, s *Store, hashes []Hash) {
	b.StopTimer()
	for _, h := range hashes {
		if err := s.Delete(h); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
}

// BenchmarkPut measures Put (streaming from a reader, hashing, writing, and with sync: fsync of
// the file and of its fan-out directory) of one new blob per iteration.
func BenchmarkPut(b *testing.B) {
	for _, bs := range benchSizes {
		for _, noSync := range []bool{false, true} {
			name := bs.name + "/sync"
			if noSync {
				name = bs.name + "/nosync"
			}
			b.Run(name, func(b *testing.B) {
				s := benchStore(b, Options{NoSync: noSync})
				blobs, hashes := benchBlobs(b, bs.ring, bs.size)
				b.SetBytes(int64(bs.size))
				i := 0
				for b.Loop() {
					if i == len(blobs) {
						deleteAll(b, s, hashes)
						i = 0
					}
					if _, err := s.Put(hashes[i], bytes.NewReader(blobs[i])); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkPutMany stores 64 small blobs per iteration, with one Put each or in one Batch.
func BenchmarkPutMany(b *testing.B) {
	const perOp = 64
	for _, size := range []int{1 << 10, 16 << 10} {
		for _, mode := range []string{"single", "batch"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				s := benchStore(b, Options{})
				blobs, hashes := benchBlobs(b, perOp, size)
				b.SetBytes(int64(perOp * size))
				for b.Loop() {
					putMany(b, s, mode, blobs, hashes)
					deleteAll(b, s, hashes)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*perOp), "µs/blob")
			})
		}
	}
}

func putMany(b *testing.B, s *Store, mode string, blobs [][]byte, hashes []Hash) {
	switch mode {
	case "single":
		for i, data := range blobs {
			if err := s.PutBytes(hashes[i], data); err != nil {
				b.Fatal(err)
			}
		}
	case "batch":
		batch := s.NewBatch()
		for i, data := range blobs {
			if err := batch.PutBytes(hashes[i], data); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures re-reading and hashing a stored 10 MiB blob (page cache warm).
func BenchmarkVerify(b *testing.B) {
	s := benchStore(b, Options{NoSync: true})
	blobs, hashes := benchBlobs(b, 1, 10<<20)
	if err := s.PutBytes(hashes[0], blobs[0]); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(10 << 20)
	for b.Loop() {
		if err := s.Verify(hashes[0]); err != nil {
			b.Fatal(err)
		}
	}
}
