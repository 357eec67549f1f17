package h1

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrBlockField is returned by HeaderBlock.Add for a field a block cannot hold: a name that is
// not a token, or a field this server writes or leaves out itself (framing, connection, Date,
// trailers).
var ErrBlockField = errors.New("h1: field cannot go in a header block")

// HeaderBlock is a run of response header fields serialized once, for the many responses that
// carry the same ones (a static file's type, validators and cache policy): a handler hands it
// to HeaderBlockWriter.WriteHeaderBlock instead of filling the response's header map, which
// saves the map's filling and this server's iterating, looking up and checking it on every
// response.
//
// A block holds exactly what the header map's path would write for its fields: Add checks a
// field once, as every response's fields are checked (a name that is not a token is refused;
// line breaks in a value become spaces, and a value that does not begin and end with visible
// ASCII is trimmed), so the bytes on the wire are the same either way. The fields whose
// values this server decides (Content-Length, Transfer-Encoding, Connection, Date, and those
// Connection names: Keep-Alive, Proxy-Connection, TE, Upgrade, Trailer) are refused: a block
// cannot make a response say something about its framing the server does not do.
//
// The zero value is an empty block. Add is not safe for concurrent use; a built block is
// never changed by the server, and any number of responses may send it at once.
type HeaderBlock struct {
	b     []byte
	names []string // canonical, in the order added
	// typed: the block has a Content-Type, or a Content-Encoding, so that the type of a
	// response sending it is not sniffed from its body.
	typed bool
}

// Add appends the field name with values, one line each, as a header map holding them would
// be written. name is put in canonical form. It returns ErrBlockField, adding nothing, for a
// name the block cannot hold.
func (hb *HeaderBlock) Add(name string, values ...string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%w: invalid name %q", ErrBlockField, name)
	}
	key := http.CanonicalHeaderKey(name)
	if serverField(key) {
		return fmt.Errorf("%w: %s is the server's", ErrBlockField, key)
	}
	for _, v := range values {
		hb.b = append(hb.b, key...)
		hb.b = append(hb.b, ": "...)
		hb.b = appendValue(hb.b, v)
		hb.b = append(hb.b, "\r\n"...)
	}
	hb.names = append(hb.names, key)
	// As sniffs: an empty Content-Encoding does not stop sniffing, an empty Content-Type does.
	if key == "Content-Type" || key == "Content-Encoding" && len(values) > 0 && values[0] != "" {
		hb.typed = true
	}
	return nil
}

// serverField reports whether a field, by its canonical name, is one whose value the server
// decides per response.
func serverField(key string) bool {
	switch key {
	case "Content-Length", "Transfer-Encoding", "Connection", "Date", "Keep-Alive",
		"Proxy-Connection", "Te", "Upgrade", "Trailer":
		return true
	}
	return strings.HasPrefix(key, http.TrailerPrefix)
}

// Has reports whether the block holds the field name, in any case.
func (hb *HeaderBlock) Has(name string) bool {
	for _, k := range hb.names {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// Len returns the block's length in bytes: 0 for an empty block.
func (hb *HeaderBlock) Len() int { return len(hb.b) }

// HeaderBlockWriter is implemented by the http.ResponseWriter this server gives handlers. Other
// servers' writers (net/http's, package h2's, httptest's) do not implement it: a handler
// tests for it and fills the header map when it is missing.
type HeaderBlockWriter interface {
	// WriteHeaderBlock is WriteHeader(status) for a response whose header section holds the
	// fields of the header map and then hb's, and whose body is contentLength bytes long
	// (negative: unknown, as without a Content-Length). The framing, Date and connection
	// fields are decided and written as for WriteHeader, the length standing for the map's
	// Content-Length. hb's fields are not added to the map: a handler that reads Header()
	// afterwards does not see them, and one that sets a field hb holds sends it twice. hb is
	// sent whatever the status (a handler gives none with a 304) and must not change until
	// the response is written. A 1xx status is sent as WriteHeader sends it, without hb.
	WriteHeaderBlock(status int, hb *HeaderBlock, contentLength int64)
}
