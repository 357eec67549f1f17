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
//
// The list of chunks grows with the site (a chunk of about 8 KiB per 25 files or so), so a large
// site's reference is itself split the same way: a reference of depth d lists chunks that join
// into the JSON of a reference of depth d-1, and depth 0 lists the manifest's own chunks. A
// deploy then costs the chunks it changed at each level, whatever the size of the site.

// ManifestRef is the chunked form of a deploy's manifest.
type ManifestRef struct {
	V      int     `json:"v"`
	Depth  int     `json:"depth,omitempty"` // 0: Chunks join into the manifest; d: into a reference of depth d-1
	Chunks []Chunk `json:"chunks"`          // in order
}

// maxRefChunks bounds a ManifestRef from the network, and MaxRefDepth its nesting (each level
// divides the list by about a hundred).
const (
	maxRefChunks = 1 << 16
	MaxRefDepth  = 4
)

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
	r, err := parseRef(b)
	if err != nil {
		return nil, nil, err
	}
	return nil, r, nil
}

// parseRef decodes and checks a ManifestRef.
func parseRef(b []byte) (*ManifestRef, error) {
	var r ManifestRef
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: manifest reference: %w", ErrInvalidManifest, err)
	}
	if r.V != 1 || len(r.Chunks) == 0 || len(r.Chunks) > maxRefChunks || r.Depth < 0 || r.Depth > MaxRefDepth {
		return nil, fmt.Errorf("%w: manifest reference of version %d, depth %d, with %d chunks", ErrInvalidManifest, r.V, r.Depth, len(r.Chunks))
	}
	var total int64
	for _, c := range r.Chunks {
		if c.Size <= 0 {
			return nil, fmt.Errorf("%w: manifest chunk of %d bytes", ErrInvalidManifest, c.Size)
		}
		total += c.Size
	}
	if total > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes over %d", ErrInvalidManifest, total, MaxManifestSize)
	}
	return &r, nil
}

// Hashes returns the reference's chunk hashes, in order.
func (r *ManifestRef) Hashes() []blobs.Hash {
	hs := make([]blobs.Hash, len(r.Chunks))
	for i, c := range r.Chunks {
		hs[i] = c.Hash
	}
	return hs
}

// join reads the reference's chunks with get and concatenates them, checking each.
func (r *ManifestRef) join(get func(blobs.Hash) ([]byte, error)) ([]byte, error) {
	var buf bytes.Buffer
	for _, c := range r.Chunks {
		b, err := get(c.Hash)
		if err != nil {
			return nil, fmt.Errorf("manifest chunk %s: %w", c.Hash.Short(), err)
		}
		if int64(len(b)) != c.Size || blobs.Sum(b) != c.Hash {
			return nil, fmt.Errorf("%w: manifest chunk %s does not match its hash", ErrInvalidManifest, c.Hash.Short())
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Expand returns the reference of depth r.Depth-1 that a reference of depth one or more stands
// for, its chunks read with get.
func (r *ManifestRef) Expand(get func(blobs.Hash) ([]byte, error)) (*ManifestRef, error) {
	if r.Depth == 0 {
		return nil, fmt.Errorf("site: expand a manifest reference of depth 0")
	}
	b, err := r.join(get)
	if err != nil {
		return nil, err
	}
	inner, err := parseRef(b)
	if err != nil {
		return nil, err
	}
	if inner.Depth != r.Depth-1 {
		return nil, fmt.Errorf("%w: manifest reference of depth %d inside one of depth %d", ErrInvalidManifest, inner.Depth, r.Depth)
	}
	return inner, nil
}

// MaxManifestSize bounds an assembled manifest.
const MaxManifestSize = 256 << 20

// AssembleManifest joins a reference's chunks (at every depth), read with get, into the manifest,
// checking each chunk's hash and the manifest's id. It also returns the hashes of every chunk it
// read, at all depths.
func AssembleManifest(ref *ManifestRef, id DeployID, get func(blobs.Hash) ([]byte, error)) (*Manifest, []blobs.Hash, error) {
	var all []blobs.Hash
	for ref.Depth > 0 {
		all = append(all, ref.Hashes()...)
		inner, err := ref.Expand(get)
		if err != nil {
			return nil, nil, err
		}
		ref = inner
	}
	all = append(all, ref.Hashes()...)
	b, err := ref.join(get)
	if err != nil {
		return nil, nil, err
	}
	if DeployIDOf(b) != id {
		return nil, nil, fmt.Errorf("%w: assembled manifest does not hash to %s", ErrInvalidManifest, id.Short())
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, nil, err
	}
	return m, all, nil
}

// Marshal returns the reference's JSON.
func (r ManifestRef) Marshal() ([]byte, error) {
	r.V = 1
	return json.Marshal(r)
}
