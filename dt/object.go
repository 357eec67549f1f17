package dt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// CanonicalJSON encodes v as JSON with object keys sorted and no insignificant white space, so one
// value always has one encoding and one id (the original node-distributed-table hashes JSON with
// sorted keys the same way). Numbers keep their literal form.
func CanonicalJSON(v any) ([]byte, error) {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("dt: encode object: %w", err)
		}
	}
	// Decoding into `any` and encoding again sorts every map's keys (encoding/json sorts map keys);
	// UseNumber keeps 1e400 or 12345678901234567890 exactly as written.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("dt: object is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("dt: object is not one JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, fmt.Errorf("dt: encode object: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ObjectID returns the id of an object: the hex SHA-256 of its canonical JSON. Adding the same
// object twice yields the same id (the table is a set).
func ObjectID(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}
