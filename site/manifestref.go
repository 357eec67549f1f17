package site

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/dt-cdn/dt/blobs"
)

// A deploy key holds either the manifest itself (its canonical JSON, for small sites) or a
// ManifestRef: the manifest's canonical JSON split into content-defined chunks that travel and are
// stored as blobs. A deploy that changes a few files then shares all but a chunk or two of its
// manifest with the deploy before it, so publishing it sends kilobytes, not the whole manifest.

// ManifestRef is the chunked form of a deploy's manifest.
type ManifestRef struct {
	V      int     `json:"v"`
	Chunks []Chunk `json:"chunks"` // in order; their concatenation is the manifest's canonical JSON
}

// maxRefChunks bounds a ManifestRef from the network.
const maxRefChunks = 1 << 16

// ParseDeployObject decodes the object under a deploy key: a manifest (returned as m) or a
// ManifestRef (returned as ref, to be assembled from its chunks with AssembleManifest).
func ParseDeployObject(b []byte) (m *Manifest, ref *ManifestRef, err error) {
	var probe struct {
		Chunks json.RawMessage `json:"chunks"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if probe.Chunks == nil {
		m, err := ParseManifest(b)
		return m, nil, err
	}
	var r ManifestRef
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("%w: manifest reference: %w", ErrInvalidManifest, err)
	}
	if r.V != 1 || len(r.Chunks) == 0 || len(r.Chunks) > maxRefChunks {
		return nil, nil, fmt.Errorf("%w: manifest reference of version %d with %d chunks", ErrInvalidManifest, r.V, len(r.Chunks))
	}
	var total int64
	for _, c := range r.Chunks {
		if c.Size <= 0 {
			return nil, nil, fmt.Errorf("%w: manifest chunk of %d bytes", ErrInvalidManifest, c.Size)
		}
		total += c.Size
	}
	if total > MaxManifestSize {
		return nil, nil, fmt.Errorf("%w: manifest of %d bytes over %d", ErrInvalidManifest, total, MaxManifestSize)
	}
	return nil, &r, nil
}

// MaxManifestSize bounds an assembled manifest.
const MaxManifestSize = 256 << 20

// AssembleManifest joins a reference's chunks, read with get, into the manifest, checking each
// chunk's hash and the manifest's id.
func AssembleManifest(ref *ManifestRef, id DeployID, get func(blobs.Hash) ([]byte, error)) (*Manifest, error) {
	var buf bytes.Buffer
	for _, c := range ref.Chunks {
		b, err := get(c.Hash)
		if err != nil {
			return nil, fmt.Errorf("manifest chunk %s: %w", c.Hash.Short(), err)
		}
		if int64(len(b)) != c.Size || blobs.Sum(b) != c.Hash {
			return nil, fmt.Errorf("%w: manifest chunk %s does not match its hash", ErrInvalidManifest, c.Hash.Short())
		}
		buf.Write(b)
	}
	if DeployIDOf(buf.Bytes()) != id {
		return nil, fmt.Errorf("%w: assembled manifest does not hash to %s", ErrInvalidManifest, id.Short())
	}
	return ParseManifest(buf.Bytes())
}

// Marshal returns the reference's JSON.
func (r ManifestRef) Marshal() ([]byte, error) {
	r.V = 1
	return json.Marshal(r)
}
