package dt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// Kind says whether a record puts a value under its key or deletes the key.
type Kind uint8

// Record kinds. ONLY APPEND TO THIS LIST! The numeric values are part of the protocol itself.
const (
	KindPut    Kind = 1
	KindDelete Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindPut:
		return "put"
	case KindDelete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Limits on records, checked on everything that arrives from the network.
const (
	recordVersion = 1
	// MaxKeySize bounds a record's key.
	MaxKeySize = 1024
	// maxRecordSize bounds an encoded record (the fixed fields plus the key).
	maxRecordSize = 256 + MaxKeySize
)

// RecordID is the SHA-256 of a record's signed bytes.
type RecordID [32]byte

func (id RecordID) String() string { return hex.EncodeToString(id[:]) }

// Record is the unit that masters sign and every node replicates. The table keeps, per key, the
// record with the highest (Clock, Writer, ID); a delete record is a tombstone that wins the same way
// and is collected after Config.TombstoneTTL.
type Record struct {
	Table [16]byte // NetworkKey.TableID of the network it belongs to
	Epoch uint32   // Config.Epoch: bumping it starts a new, empty table on the same key
	Kind  Kind     // put or delete
	Clock uint64   // when the master wrote it: a hybrid logical clock, Unix ms in the high 48 bits, a counter in the low 16
	// Writer is the node id of the process that signed the record. Several processes may hold one
	// master key at once; the writer id breaks ties between them.
	Writer NodeID
	Master ed25519.PublicKey // the signing key; must be one of the trusted masters
	Key    string            // for objects: the object id
	Hash   [32]byte          // SHA-256 of the body (zero for deletes)
	Size   uint64            // body length in bytes (zero for deletes)
	Sig    []byte            // Ed25519 signature by Master over the signed bytes
}

// signedBytes encodes every field but the signature, in a fixed order with fixed widths (and a
// length prefix on the key), so the encoding is canonical: one record, one byte string.
func (r *Record) signedBytes() []byte {
	b := make([]byte, 0, 160+len(r.Key))
	b = append(b, recordVersion)
	b = append(b, r.Table[:]...)
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	b = append(b, byte(r.Kind))
	b = binary.BigEndian.AppendUint64(b, r.Clock)
	b = append(b, r.Writer[:]...)
	b = append(b, r.Master...)
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = append(b, r.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Size)
	return b
}

// ID returns the record's identity: SHA-256 of its signed bytes.
func (r *Record) ID() RecordID { return sha256.Sum256(r.signedBytes()) }

// sign fills in the signature with the master key.
func (r *Record) sign(key ed25519.PrivateKey) {
	r.Master = key.Public().(ed25519.PublicKey)
	r.Sig = ed25519.Sign(key, r.signedBytes())
}

// Marshal returns the wire form: the signed bytes followed by the 64-byte signature.
func (r *Record) Marshal() []byte {
	return append(r.signedBytes(), r.Sig...)
}

// UnmarshalRecord decodes the wire form. It checks structure only; verify checks meaning.
func UnmarshalRecord(b []byte) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(b))
	}
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		if d.err != nil {
			return nil, fmt.Errorf("%w: record: %w", ErrMalformed, d.err)
		}
		return nil, fmt.Errorf("%w: record version %d", ErrMalformed, v)
	}
	r := &Record{}
	copy(r.Table[:], d.bytes(16))
	r.Epoch = d.uint32()
	r.Kind = Kind(d.byte())
	r.Clock = d.uint64()
	copy(r.Writer[:], d.bytes(16))
	r.Master = bytes.Clone(d.bytes(ed25519.PublicKeySize))
	r.Key = string(d.bytes(int(d.uvarintMax(MaxKeySize))))
	copy(r.Hash[:], d.bytes(32))
	r.Size = d.uint64()
	r.Sig = bytes.Clone(d.bytes(ed25519.SignatureSize))
	if d.err != nil {
		return nil, fmt.Errorf("%w: record: %w", ErrMalformed, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: record: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return r, nil
}

// checkShape validates the fields a record must have whatever its signer: grounds for dropping the
// link that sent it.
func (r *Record) checkShape() error {
	switch r.Kind {
	case KindPut:
	case KindDelete:
		if r.Hash != ([32]byte{}) || r.Size != 0 {
			return fmt.Errorf("%w: delete record with a body", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: unknown record kind %d", ErrMalformed, r.Kind)
	}
	if r.Key == "" {
		return fmt.Errorf("%w: empty key", ErrMalformed)
	}
	return nil
}

// newer reports whether r wins over old for the same key: the higher clock wins; ties (several
// writers in one millisecond and counter) go to the higher writer id, then the higher record id, so
// every node picks the same winner whatever the order records arrive in.
func (r *Record) newer(rID RecordID, old *indexEntry) bool {
	if clock := hlc.Timestamp(r.Clock); clock != old.clock {
		return clock > old.clock
	}
	if c := bytes.Compare(r.Writer[:], old.writer[:]); c != 0 {
		return c > 0
	}
	return bytes.Compare(rID[:], old.id[:]) > 0
}
