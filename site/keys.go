package site

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/blobs"
)

// Keys of the dt table under which sites live. A key is one of:
//
//	blob/<64 hex>        a BlobObject: one blob of file data (a file, a chunk or a variant)
//	deploy/<64 hex>      a manifest's canonical JSON; the hex is its DeployID
//	sites/<name>         a Record: a site and the hosts it claims
//	site/<name>/current  a Current: the deploy edges serve for the site <name>
//	site/current         a Current: the deploy edges serve for the site DefaultSite
//	site/<name>/deploys  a History: the deploys published to the site <name>, newest first
//
// Blobs and deploys are content-addressed and shared by every site: the same file in two sites
// is one blob. The site DefaultSite keeps the key a network of the previous release used for
// its one site, so that network's edges go on following it; "site/default/current" is never
// used.
const (
	CurrentKey       = "site/current"
	blobKeyPrefix    = "blob/"
	deployKeyPrefix  = "deploy/"
	RecordKeyPrefix  = "sites/"
	currentKeyPrefix = "site/"
	currentKeySuffix = "/current"
)

// RecordKey returns the table key of a site's record: "sites/<name>".
func RecordKey(name string) string { return RecordKeyPrefix + name }

// ParseRecordKey returns the site a record key names, and false for any other key (a name
// CheckSiteName refuses among them).
func ParseRecordKey(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, RecordKeyPrefix)
	return name, ok && CheckSiteName(name) == nil
}

// CurrentKeyOf returns the table key of a site's current pointer: CurrentKey for DefaultSite,
// "site/<name>/current" for any other.
func CurrentKeyOf(name string) string {
	if name == DefaultSite {
		return CurrentKey
	}
	return currentKeyPrefix + name + currentKeySuffix
}

// ParseCurrentKey returns the site whose current pointer key is, and false for any other key.
// It inverts CurrentKeyOf: CurrentKey names DefaultSite, and "site/default/current" is not a
// current pointer key.
func ParseCurrentKey(key string) (string, bool) {
	if key == CurrentKey {
		return DefaultSite, true
	}
	rest, ok := strings.CutPrefix(key, currentKeyPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, currentKeySuffix)
	if !ok || name == DefaultSite || CheckSiteName(name) != nil {
		return "", false
	}
	return name, true
}

// BlobKey returns the table key of a blob: "blob/<hex>".
func BlobKey(h blobs.Hash) string { return blobKeyPrefix + h.String() }

// DeployKey returns the table key of a deploy's manifest: "deploy/<hex>".
func DeployKey(id DeployID) string { return deployKeyPrefix + id.String() }

// ParseBlobKey returns the hash a blob key names, and false for any other key.
func ParseBlobKey(key string) (blobs.Hash, bool) {
	rest, ok := strings.CutPrefix(key, blobKeyPrefix)
	if !ok {
		return blobs.Hash{}, false
	}
	h, err := blobs.ParseHash(rest)
	return h, err == nil
}

// ParseDeployKey returns the deploy id a deploy key names, and false for any other key.
func ParseDeployKey(key string) (DeployID, bool) {
	rest, ok := strings.CutPrefix(key, deployKeyPrefix)
	if !ok {
		return DeployID{}, false
	}
	id, err := ParseDeployID(rest)
	return id, err == nil
}

// Encodings of a BlobObject's data.
const (
	BlobIdentity = "identity" // the raw bytes
	BlobZstd     = "zstd"     // one or more Zstandard frames (RFC 8878) of the raw bytes
)

// BlobObject is the table object that carries one blob over the network. On disk (package blobs)
// the blob is stored raw; on the wire it is compressed when that makes it smaller and
// base64-encoded (standard alphabet, RFC 4648 §4) inside JSON:
//
//	{"hash":"<64 hex>","size":1234,"enc":"zstd","data":"KLUv/..."}
//
// Hash and Size describe the raw bytes.
type BlobObject struct {
	Hash blobs.Hash `json:"hash"`
	Size int64      `json:"size"`
	Enc  string     `json:"enc"`
	Data []byte     `json:"data"` // encoding/json writes and reads []byte as standard base64
}

// blobCodec holds the zstd encoder and decoder shared by EncodeBlob and DecodeBlob. Both are
// safe for concurrent EncodeAll/DecodeAll and hold no per-call state, and building them costs
// megabytes of tables, so they are built once, on first use, and never changed.
var blobCodec = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	// Checksums are off: the blob's SHA-256 is checked after decoding anyway.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false))
	if err != nil {
		panic("site: zstd encoder: " + err.Error()) // constant options: cannot fail
	}
	// WithDecodeAllCapLimit makes DecodeAll stop at the capacity of the buffer it is given, which
	// DecodeBlob sizes to the blob's claimed size: a zstd bomb cannot make it allocate more.
	dec, err := zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic("site: zstd decoder: " + err.Error())
	}
	return enc, dec
})

// EncodeBlob returns the BlobObject JSON that carries raw: zstd-compressed (level "default") when
// that is smaller, the raw bytes otherwise (already-compressed variants and images).
func EncodeBlob(raw []byte) ([]byte, error) {
	obj := BlobObject{Hash: blobs.Sum(raw), Size: int64(len(raw)), Enc: BlobIdentity, Data: raw}
	if len(raw) > 0 {
		enc, _ := blobCodec()
		if z := enc.EncodeAll(raw, make([]byte, 0, len(raw)/2)); len(z) < len(raw) {
			obj.Enc, obj.Data = BlobZstd, z
		}
	}
	b, err := json.Marshal(&obj)
	if err != nil {
		return nil, fmt.Errorf("site: encode blob %s: %w", obj.Hash.Short(), err)
	}
	return b, nil
}

// DecodeBlob decodes a BlobObject from untrusted bytes and returns the hash and raw data of the
// blob. It refuses a blob whose size (claimed or actual) is over maxSize with ErrBlobTooLarge
// before decoding it; it decompresses into a buffer of the claimed size and stops there, so it
// never allocates more than maxSize for the data, whatever the input. It returns the data only
// once it hashes to the claimed hash (otherwise an error wrapping blobs.ErrHashMismatch).
// Malformed objects, unknown encodings and sizes that do not match the data are refused with
// ErrInvalidBlob. Unknown JSON fields are ignored.
//
// A claimed size is believed up to maxSize: a small object may make DecodeBlob allocate maxSize
// bytes before it finds the data short. Choose maxSize accordingly.
func DecodeBlob(body []byte, maxSize int64) (blobs.Hash, []byte, error) {
	// The data of a valid object is at most maxSize bytes, so its base64 is at most
	// EncodedLen(maxSize); allow the JSON around it. Bigger bodies are refused unread.
	if maxSize < 1<<50 && int64(len(body)) > int64(base64.StdEncoding.EncodedLen(int(max(maxSize, 0))))+512 {
		return blobs.Hash{}, nil, fmt.Errorf("%w: object of %d bytes for a limit of %d", ErrBlobTooLarge, len(body), maxSize)
	}
	obj, ok := parseEncodedBlob(body)
	if !ok {
		if err := json.Unmarshal(body, &obj); err != nil {
			return blobs.Hash{}, nil, fmt.Errorf("%w: %w", ErrInvalidBlob, err)
		}
	}
	h := obj.Hash
	switch {
	case h.IsZero():
		return h, nil, fmt.Errorf("%w: no hash", ErrInvalidBlob)
	case obj.Size < 0:
		return h, nil, fmt.Errorf("%w: blob %s: negative size", ErrInvalidBlob, h.Short())
	case obj.Size > maxSize:
		return h, nil, fmt.Errorf("%w: blob %s of %d bytes, limit %d", ErrBlobTooLarge, h.Short(), obj.Size, maxSize)
	}
	raw, err := decodeBlobData(&obj)
	if err != nil {
		return h, nil, fmt.Errorf("blob %s: %w", h.Short(), err)
	}
	if blobs.Sum(raw) != h {
		return h, nil, fmt.Errorf("site: blob %s: %w", h.Short(), blobs.ErrHashMismatch)
	}
	return h, raw, nil
}

// parseEncodedBlob reads a BlobObject in exactly the form EncodeBlob writes it, the form nearly
// every object has: {"hash":"…","size":N,"enc":"…","data":"…"} with nothing else. It skips the
// generic decoder's validation pass and reflection, which cost more than the base64 itself on
// an edge taking in a large deploy. Anything else, valid or not, reports false, for
// json.Unmarshal to judge; what it accepts, json.Unmarshal decodes to the same object.
func parseEncodedBlob(body []byte) (BlobObject, bool) {
	var obj BlobObject
	rest, ok := bytes.CutPrefix(body, []byte(`{"hash":"`))
	if !ok || len(rest) < 2*len(obj.Hash) {
		return obj, false
	}
	h, err := blobs.ParseHash(string(rest[:2*len(obj.Hash)]))
	if err != nil {
		return obj, false
	}
	obj.Hash = h
	if rest, ok = bytes.CutPrefix(rest[2*len(obj.Hash):], []byte(`","size":`)); !ok {
		return obj, false
	}
	// A JSON number with no sign, fraction or exponent, and no leading zero, that fits.
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 18 || (n > 1 && rest[0] == '0') {
		return obj, false
	}
	for _, c := range rest[:n] {
		obj.Size = obj.Size*10 + int64(c-'0')
	}
	if rest, ok = bytes.CutPrefix(rest[n:], []byte(`,"enc":"`)); !ok {
		return obj, false
	}
	n = 0
	for n < len(rest) && rest[n] >= 'a' && rest[n] <= 'z' {
		n++
	}
	obj.Enc = string(rest[:n])
	if rest, ok = bytes.CutPrefix(rest[n:], []byte(`","data":"`)); !ok {
		return obj, false
	}
	data, ok := bytes.CutSuffix(rest, []byte(`"}`))
	if !ok {
		return obj, false
	}
	// The decoder encoding/json uses for []byte, so the two agree on every input: it refuses
	// every byte outside the alphabet (a quote or backslash among them) but skips CR and LF,
	// which a JSON string cannot hold unescaped.
	if bytes.IndexByte(data, '\r') >= 0 || bytes.IndexByte(data, '\n') >= 0 {
		return obj, false
	}
	obj.Data = make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err = base64.StdEncoding.Decode(obj.Data, data)
	if err != nil {
		return obj, false
	}
	obj.Data = obj.Data[:n]
	return obj, true
}

func decodeBlobData(obj *BlobObject) ([]byte, error) {
	switch obj.Enc {
	case BlobIdentity:
		if int64(len(obj.Data)) != obj.Size {
			return nil, fmt.Errorf("%w: %d bytes of data for a size of %d", ErrInvalidBlob, len(obj.Data), obj.Size)
		}
		return obj.Data, nil
	case BlobZstd:
		// EncodeBlob uses zstd only when it is smaller; anything else is not a blob it wrote.
		if len(obj.Data) == 0 || int64(len(obj.Data)) >= obj.Size {
			return nil, fmt.Errorf("%w: %d bytes of zstd data for a size of %d", ErrInvalidBlob, len(obj.Data), obj.Size)
		}
		_, dec := blobCodec()
		raw, err := dec.DecodeAll(obj.Data, make([]byte, 0, obj.Size))
		switch {
		case errors.Is(err, zstd.ErrDecoderSizeExceeded):
			return nil, fmt.Errorf("%w: zstd data decodes to more than its size %d", ErrInvalidBlob, obj.Size)
		case err != nil:
			return nil, fmt.Errorf("%w: zstd: %w", ErrInvalidBlob, err)
		case int64(len(raw)) != obj.Size:
			return nil, fmt.Errorf("%w: zstd data decodes to %d bytes, not its size %d", ErrInvalidBlob, len(raw), obj.Size)
		}
		return raw, nil
	default:
		return nil, fmt.Errorf("%w: unknown encoding %q", ErrInvalidBlob, truncate(obj.Enc))
	}
}

// Current is the object under a site's current pointer key (CurrentKeyOf): the deploy edges
// serve for the site, and when a master chose it.
// Publishing and rollback both write it; the newest write wins (the table's rule for a key).
type Current struct {
	Deploy DeployID  `json:"deploy"`
	Time   time.Time `json:"time"`
}

// Marshal returns the JSON of the pointer, with Time in UTC.
func (c Current) Marshal() ([]byte, error) {
	c.Time = c.Time.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCurrent, err)
	}
	return b, nil
}

// ParseCurrent decodes a current pointer from untrusted bytes. Unknown fields are refused, and so
// are a missing deploy id or time.
func ParseCurrent(b []byte) (Current, error) {
	var c Current
	if err := strictUnmarshal(b, &c); err != nil {
		return Current{}, fmt.Errorf("%w: %w", ErrInvalidCurrent, err)
	}
	if c.Deploy.IsZero() || c.Time.IsZero() {
		return Current{}, fmt.Errorf("%w: deploy id or time missing", ErrInvalidCurrent)
	}
	return c, nil
}
