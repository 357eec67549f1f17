package static

import (
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/dt-cdn/dt/internal/h1"
)

// repBlocks are the header blocks (h1.HeaderBlock) of a file's 200 responses under one header
// set, one per representation, each made at the first response that can send it: a Site holds
// blocks for the representations it serves over plain HTTP/1.1, not for every one it has (a
// block takes a few hundred bytes, which a deploy of many files would otherwise hold for each
// of them, served or not). A block that could not be made is stored empty, and its responses
// use the header map.
type repBlocks [numCodings]atomic.Pointer[h1.HeaderBlock]

// blocksFor returns the blocks of f's responses under hs, when they are kept: for f's default
// header set; nil for a set built for one request (a rewrite matched by _headers rules).
func (f *file) blocksFor(hs *headerSet) *repBlocks {
	if hs == f.headers {
		return &f.blocks
	}
	return nil
}

// head is how the status line and header section of a response with a whole representation
// go out: by the header map (hb nil), or by a header block over package h1.
type head struct {
	bw   h1.HeaderBlockWriter
	hb   *h1.HeaderBlock
	size int64
}

// write sends the status line and header section with status.
func (hd head) write(w http.ResponseWriter, status int) {
	if hd.hb != nil {
		hd.bw.WriteHeaderBlock(status, hd.hb, hd.size)
		return
	}
	w.WriteHeader(status)
}

// headFor chooses how a response with the whole of rp goes out, and fills the header map when
// that is the way. A header block is used only where it gives the same response: a 200 (a
// 304 or an error page carries other fields), over package h1 (other servers take no block),
// with blocks kept for hs, and a header map holding none of the block's fields (a layer in
// front of the handler may have set one, which the map's path would replace). The block's
// fields are then not in the map: nothing after the handler reads them there.
func (h *Handler) headFor(w http.ResponseWriter, s *Site, hs *headerSet, rp *rep, blocks *repBlocks, status int) head {
	if status == http.StatusOK && blocks != nil {
		if bw, ok := w.(h1.HeaderBlockWriter); ok {
			hb := h.headerBlock(&blocks[rp.coding], s, hs, rp)
			if hb.Len() > 0 && disjoint(w.Header(), hb) {
				return head{bw: bw, hb: hb, size: rp.size}
			}
		}
	}
	hdr := w.Header()
	h.setFileHeaders(hdr, s, hs, rp, status)
	hdr[hContentLength] = rp.lenH
	return head{}
}

// headerBlock returns the block of rp's 200 responses under hs, making it if slot holds none.
// Responses racing to make it make the same block; one is kept.
func (h *Handler) headerBlock(slot *atomic.Pointer[h1.HeaderBlock], s *Site, hs *headerSet, rp *rep) *h1.HeaderBlock {
	if hb := slot.Load(); hb != nil {
		return hb
	}
	slot.CompareAndSwap(nil, h.newHeaderBlock(s, hs, rp))
	return slot.Load()
}

// newHeaderBlock makes the block of rp's 200 responses under hs from the fields setFileHeaders
// sets, so that the two ways cannot differ: the header set's fields in their order, then the
// others by name. It returns an empty block when one of them cannot go in a block, which
// NewSite's checks leave no field to do.
func (h *Handler) newHeaderBlock(s *Site, hs *headerSet, rp *rep) *h1.HeaderBlock {
	fields := http.Header{}
	h.setFileHeaders(fields, s, hs, rp, http.StatusOK)
	keys := make([]string, 0, len(fields))
	for _, f := range hs.full {
		keys = append(keys, f.key)
	}
	var rest []string
	for k := range fields {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	hb := new(h1.HeaderBlock)
	for _, k := range append(keys, rest...) {
		if err := hb.Add(k, fields[k]...); err != nil {
			return new(h1.HeaderBlock)
		}
	}
	return hb
}

// disjoint reports whether the header map holds none of the block's fields. The map is empty
// unless a layer in front of the handler set a field.
func disjoint(hdr http.Header, hb *h1.HeaderBlock) bool {
	for k := range hdr {
		if hb.Has(k) {
			return false
		}
	}
	return true
}
