package dt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// The database layout. Every bucket is created at open; values are written only by the applier
// goroutine, so there is never more than one write transaction.
var (
	bucketMeta    = []byte("meta")    // format, incarnation, hlc, head
	bucketRecords = []byte("records") // local sequence (8 bytes, big endian) → recordValue: the log
	bucketBodies  = []byte("bodies")  // content hash → uvarint count of records naming a blob-store body
	bucketCursors = []byte("cursors") // peer node id → peer incarnation (8) + peer sequence (8)
	bucketGuard   = []byte("guard")   // "state" → ipguard state

	metaFormat      = []byte("format")
	metaIncarnation = []byte("incarnation")
	metaClock       = []byte("hlc")
	metaHead        = []byte("head")
	metaSynced      = []byte("synced") // Unix milliseconds of the last applied peer log position
)

// storeFormat is the version of the database layout; a database of another version is refused
// rather than misread.
const storeFormat = 3

// indexEntry is the in-memory copy of a key's current record: everything needed to decide whether
// an arriving record wins, without touching the disk.
type indexEntry struct {
	key    string
	id     RecordID
	clock  hlc.Timestamp
	writer NodeID
	kind   Kind
	hash   [32]byte
	size   uint64
	seq    uint64
}

// recordValue is what bucketRecords holds under a record's local sequence: where the record came
// from, the record, and its body when the body is small enough to live inline. Keeping small
// bodies beside their records makes the log the only bucket a burst of small objects appends to.
type recordValue struct {
	seq    uint64
	origin NodeID
	rec    *Record
	body   []byte // the inline body; nil when the body is in the blob store (or for a delete)
}

const (
	valueNoBody     = 0
	valueInlineBody = 1
)

func (v recordValue) marshal() []byte {
	raw := v.rec.Marshal()
	b := make([]byte, 0, 16+1+3+len(raw)+len(v.body))
	b = append(b, v.origin[:]...)
	if v.body != nil {
		b = append(b, valueInlineBody)
	} else {
		b = append(b, valueNoBody)
	}
	b = appendLenBytes(b, raw)
	return append(b, v.body...)
}

// unmarshalRecordValue decodes a records bucket value (its sequence is the bucket key). The body
// and the returned wire form alias b.
func unmarshalRecordValue(seq uint64, b []byte) (recordValue, []byte, error) {
	d := decoder{b: b}
	v := recordValue{seq: seq}
	copy(v.origin[:], d.bytes(16))
	flag := d.byte()
	raw := d.lenBytes(maxRecordSize)
	if d.err != nil {
		return v, nil, fmt.Errorf("%w: stored record %d: %w", ErrMalformed, seq, d.err)
	}
	if flag == valueInlineBody {
		v.body = d.b
		if v.body == nil {
			v.body = []byte{}
		}
	}
	rec, err := UnmarshalRecord(raw)
	if err != nil {
		return v, nil, err
	}
	v.rec = rec
	return v, raw, nil
}

// store is the node's persistent state: bbolt for records and metadata, blobs for large bodies.
type store struct {
	db          *bolt.DB
	blobs       *blobs.Store
	incarnation uint64
}

func openStore(dir string, noSync bool, newIncarnation func() uint64) (*store, error) {
	db, err := bolt.Open(filepath.Join(dir, "dt.db"), 0o600, &bolt.Options{
		Timeout: 2 * time.Second, // another process holds the database: fail instead of hanging
		NoSync:  noSync,
		// As etcd does: the free list is rebuilt by a scan at open instead of being written at
		// every commit, and kept in a hash map; both make the frequent small commits cheaper.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("dt: open database: %w", err)
	}
	bs, err := blobs.Open(filepath.Join(dir, "blobs"), blobs.Options{NoSync: noSync})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dt: open blob store: %w", err)
	}
	s := &store{db: db, blobs: bs}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketRecords, bucketBodies, bucketCursors, bucketGuard} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaIncarnation); len(v) == 8 {
			if f := getUint64(meta, metaFormat); f != storeFormat {
				return fmt.Errorf("database format %d, this dt reads format %d", f, storeFormat)
			}
			s.incarnation = binary.BigEndian.Uint64(v)
			return nil
		}
		if err := putUint64(meta, metaFormat, storeFormat); err != nil {
			return err
		}
		// A new database is a new incarnation: peers holding a cursor into an older log of ours (from
		// before the data directory was wiped) see the change and reconcile instead.
		s.incarnation = newIncarnation()
		return meta.Put(metaIncarnation, binary.BigEndian.AppendUint64(nil, s.incarnation))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dt: initialise database: %w", err)
	}
	return s, nil
}

func (s *store) close() error { return errors.Join(s.db.Close(), s.blobs.Close()) }

// expireIfStale empties the table of a node that has been out of touch with the network for
// longer than ttl, the tombstone TTL. Its peers may have collected the tombstones of objects
// removed meanwhile, so its old records could no longer be told apart from live ones: rather than
// risk bringing deleted objects back, it starts again from an empty table (with a new incarnation,
// so peers do not resume an old cursor into it) and syncs everything anew, as the original
// node-distributed-table did on every start. It reports whether it did.
func (s *store) expireIfStale(now time.Time, ttl time.Duration, newIncarnation uint64) (bool, error) {
	expired := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		last := getUint64(meta, metaSynced)
		if last == 0 || now.Sub(time.UnixMilli(int64(last))) <= ttl {
			return nil
		}
		for _, name := range [][]byte{bucketRecords, bucketBodies, bucketCursors} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := meta.Delete(metaSynced); err != nil {
			return err
		}
		s.incarnation = newIncarnation
		expired = true
		return putUint64(meta, metaIncarnation, newIncarnation)
	})
	if err != nil {
		return false, fmt.Errorf("dt: expire stale table: %w", err)
	}
	return expired, nil
}

// loaded is what a node needs in memory after open.
type loaded struct {
	index map[string]*indexEntry
	head  uint64
	clock hlc.Timestamp
}

func (s *store) load() (loaded, error) {
	l := loaded{index: make(map[string]*indexEntry)}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		l.head = getUint64(meta, metaHead)
		l.clock = hlc.Timestamp(getUint64(meta, metaClock))
		// The records bucket holds exactly the current record of every key.
		return tx.Bucket(bucketRecords).ForEach(func(k, raw []byte) error {
			v, _, err := unmarshalRecordValue(binary.BigEndian.Uint64(k), raw)
			if err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			l.index[v.rec.Key] = entryOf(v.rec, v.rec.ID(), v.seq)
			return nil
		})
	})
	if err != nil {
		return l, fmt.Errorf("dt: load database: %w", err)
	}
	return l, nil
}

func entryOf(r *Record, id RecordID, seq uint64) *indexEntry {
	return &indexEntry{key: r.Key, id: id, clock: hlc.Timestamp(r.Clock), writer: r.Writer, kind: r.Kind, hash: r.Hash, size: r.Size, seq: seq}
}

func getUint64(b *bolt.Bucket, key []byte) uint64 {
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint64(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// blobBody returns a body kept in the blob store.
func (s *store) blobBody(hash [32]byte) ([]byte, error) {
	b, err := s.blobs.ReadAll(blobs.Hash(hash))
	if errors.Is(err, blobs.ErrNotFound) {
		return nil, fmt.Errorf("dt: body %x: %w", hash[:6], ErrNotFound)
	}
	return b, err
}

// hasBlob reports whether a body is in the blob store.
func (s *store) hasBlob(hash [32]byte) bool { return s.blobs.Has(blobs.Hash(hash)) }

// logEntry is one entry of the local log, as a tailer reads it.
type logEntry struct {
	seq    uint64
	origin NodeID
	rec    *Record
	raw    []byte // the record's wire form
	body   []byte // the inline body of a put, when stored inline
}

// readLog returns up to max log entries with sequence above after, in order, with their inline
// bodies.
func (s *store) readLog(after uint64, max int) ([]logEntry, error) {
	var out []logEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, val := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, val = c.Next() {
			v, raw, err := unmarshalRecordValue(binary.BigEndian.Uint64(k), val)
			if err != nil {
				return err
			}
			// Copy: bbolt memory is valid only inside the transaction.
			out = append(out, logEntry{seq: v.seq, origin: v.origin, rec: v.rec, raw: bytes.Clone(raw), body: cloneBody(v.body)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dt: read log: %w", err)
	}
	return out, nil
}

// cloneBody copies a body out of bbolt memory, keeping an empty body distinct from none.
func cloneBody(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// recordAt returns the record stored at a sequence number and its inline body, if any.
func (s *store) recordAt(seq uint64) (*Record, []byte, error) {
	var (
		rec  *Record
		body []byte
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketRecords).Get(seqKey(seq))
		if raw == nil {
			return ErrNotFound
		}
		v, _, err := unmarshalRecordValue(seq, raw)
		rec, body = v.rec, cloneBody(v.body)
		return err
	})
	return rec, body, err
}

// bodyOf returns the body of the put stored at seq: inline, or from the blob store.
func (s *store) bodyOf(seq uint64) ([]byte, error) {
	rec, body, err := s.recordAt(seq)
	if err != nil {
		return nil, err
	}
	if body != nil {
		return body, nil
	}
	return s.blobBody(rec.Hash)
}

// cursor returns the sequence of peer's log we hold everything up to, if our cursor is for the
// peer's current incarnation; zero otherwise.
func (s *store) cursor(peer NodeID, incarnation uint64) uint64 {
	var seq uint64
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCursors).Get(peer[:])
		if len(v) == 16 && binary.BigEndian.Uint64(v) == incarnation {
			seq = binary.BigEndian.Uint64(v[8:])
		}
		return nil
	})
	return seq
}

// guardState implements ipguard.Store on the database.
type guardState struct{ db *bolt.DB }

func (g guardState) Load() ([]byte, error) {
	var out []byte
	err := g.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketGuard); b != nil { // nil only in a database opened read-only
			out = append([]byte(nil), b.Get([]byte("state"))...)
		}
		return nil
	})
	return out, err
}

func (g guardState) Save(state []byte) error {
	return g.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGuard).Put([]byte("state"), state)
	})
}

// isTrusted reports whether pub is one of the masters.
func isTrusted(masters []ed25519.PublicKey, pub ed25519.PublicKey) bool {
	for _, m := range masters {
		if m.Equal(pub) {
			return true
		}
	}
	return false
}
