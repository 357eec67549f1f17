package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	fastcdc "github.com/jotfs/fastcdc-go"

	"github.com/dt-cdn/dt/blobs"
	"github.com/dt-cdn/dt/site"
)

// Manifests up to inlineManifestMax bytes are stored whole under their deploy key; larger ones as
// a site.ManifestRef to content-defined chunks of about 2 KiB, which consecutive deploys share,
// and a reference over inlineRefMax bytes is chunked again. A deploy that changes one file sends
// one small chunk per level and a reference of at most inlineRefMax bytes: about 5 KB for a
// 10,000-file site, where 8 KiB chunks and references inlined up to 16 KiB sent 11 KB.
const (
	inlineManifestMax = 16 << 10
	inlineRefMax      = 2 << 10
	manifestChunkMin  = 512
	manifestChunkAvg  = 2 << 10
	manifestChunkMax  = 8 << 10
)

// chunkManifest splits a manifest's canonical JSON into content-defined chunks.
func chunkManifest(canonical []byte) ([]site.Chunk, map[blobs.Hash][]byte, error) {
	fastcdcMu.Lock()
	defer fastcdcMu.Unlock()
	c, err := fastcdc.NewChunker(bytes.NewReader(canonical), fastcdc.Options{MinSize: manifestChunkMin, AverageSize: manifestChunkAvg, MaxSize: manifestChunkMax})
	if err != nil {
		return nil, nil, fmt.Errorf("chunker: %w", err)
	}
	var chunks []site.Chunk
	data := map[blobs.Hash][]byte{}
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			return chunks, data, nil
		}
		if err != nil {
			return nil, nil, err
		}
		b := bytes.Clone(ch.Data)
		h := blobs.Sum(b)
		chunks = append(chunks, site.Chunk{Hash: h, Size: int64(len(b))})
		data[h] = b
	}
}

// writeManifest stores a manifest under its deploy key: whole when small, else as a reference to
// chunks (nested while the reference itself is large), sending only the chunks the network lacks.
func (s *session) writeManifest(ctx context.Context, m *site.Manifest, id site.DeployID) error {
	body, err := m.Marshal()
	if err != nil {
		return err
	}
	var keys []string
	var objects [][]byte
	for depth := 0; len(body) > inlineManifestMax || (depth > 0 && len(body) > inlineRefMax); depth++ {
		if depth > site.MaxRefDepth {
			return fmt.Errorf("publish: manifest of %d bytes needs references deeper than %d", len(body), site.MaxRefDepth)
		}
		chunks, data, err := chunkManifest(body)
		if err != nil {
			return fmt.Errorf("publish: split manifest: %w", err)
		}
		for _, c := range chunks {
			key := site.BlobKey(c.Hash)
			if s.node.Has(key) || contains(keys, key) {
				continue
			}
			obj, err := site.EncodeBlob(data[c.Hash])
			if err != nil {
				return err
			}
			keys, objects = append(keys, key), append(objects, obj)
		}
		if body, err = (site.ManifestRef{Depth: depth, Chunks: chunks}).Marshal(); err != nil {
			return err
		}
	}
	if len(keys) > 0 {
		if err := s.node.PutMany(ctx, keys, objects); err != nil {
			return fmt.Errorf("publish: write manifest chunks: %w", err)
		}
	}
	if err := s.node.Put(ctx, site.DeployKey(id), body); err != nil {
		return fmt.Errorf("publish: write manifest: %w", err)
	}
	return nil
}

func contains(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// readManifest loads a deploy's manifest, assembling it from chunks when it was stored as a
// reference; it also returns the chunk blobs (none for an inline manifest).
func (s *session) readManifest(ctx context.Context, id site.DeployID) (*site.Manifest, []blobs.Hash, error) {
	raw, err := s.node.Get(ctx, site.DeployKey(id))
	if err != nil {
		return nil, nil, fmt.Errorf("publish: read manifest %s: %w", id.Short(), err)
	}
	m, ref, err := site.ParseDeployObject(raw)
	if err != nil || ref == nil {
		return m, nil, err
	}
	m, hs, err := site.AssembleManifest(ref, id, func(h blobs.Hash) ([]byte, error) {
		obj, err := s.node.Get(ctx, site.BlobKey(h))
		if err != nil {
			return nil, err
		}
		_, b, err := site.DecodeBlob(obj, site.MaxManifestSize)
		return b, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("publish: manifest %s: %w", id.Short(), err)
	}
	return m, hs, nil
}
