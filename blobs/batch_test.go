package blobs

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestBatchCommit(t *testing.T) {
	s := newStore(t, Options{})
	rng := newRand(t)
	b := s.NewBatch()
	var want []Hash
	var wg sync.WaitGroup
	for g := range 4 {
		var blobs [][]byte
		for range 30 {
			data, h := randomBlob(rng, rng.IntN(5000))
			blobs = append(blobs, data)
			want = append(want, h)
		}
		wg.Go(func() {
			for i, data := range blobs {
				var err error
				if (g+i)%2 == 0 {
					err = b.PutBytes(Sum(data), data)
				} else {
					_, err = b.Put(Sum(data), bytes.NewReader(data))
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want = slices.Compact(sortHashes(want))
	if b.Len() != len(want) {
		t.Errorf("Len = %d, want %d", b.Len(), len(want))
	}
	// Nothing is visible before Commit.
	if got := listAll(t, s); len(got) != 0 {
		t.Fatalf("%d blobs visible before Commit", len(got))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s); !slices.Equal(got, want) {
		t.Errorf("All after Commit = %d blobs, want %d", len(got), len(want))
	}
	data := []byte("late")
	if err := b.PutBytes(Sum(data), data); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Commit: %v, want ErrClosed", err)
	}
}

func TestBatchDuplicates(t *testing.T) {
	s := newStore(t, Options{})
	stored := []byte("stored before")
	if err := s.PutBytes(Sum(stored), stored); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	data := []byte("twice in one batch")
	for range 3 {
		if err := b.PutBytes(Sum(data), data); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.Put(Sum(data), untouchedReader{t}); err != nil || n != int64(len(data)) {
		t.Errorf("Put of a pending hash = %d, %v", n, err)
	}
	if err := b.PutBytes(Sum(stored), stored); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 1 {
		t.Errorf("Len = %d, want 1", b.Len())
	}
	if tmp := tempFiles(t, s.Dir()); len(tmp) != 1 {
		t.Errorf("%d temporary files for one pending blob", len(tmp))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s); !slices.Equal(got, sortHashes([]Hash{Sum(data), Sum(stored)})) {
		t.Errorf("All = %v", got)
	}
}

func TestBatchDiscard(t *testing.T) {
	s := newStore(t, Options{})
	b := s.NewBatch()
	for i := range 10 {
		data := []byte{byte(i)}
		if err := b.PutBytes(Sum(data), data); err != nil {
			t.Fatal(err)
		}
	}
	b.Discard()
	b.Discard()
	if err := b.Commit(); err != nil {
		t.Fatal(err) // an empty commit
	}
	assertEmpty(t, s.Dir())
}
