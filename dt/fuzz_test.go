package dt

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

func sampleRecord(t testing.TB) *Record {
	_, key, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	r := &Record{Kind: KindPut, Clock: uint64(hlc.Timestamp(12345 << 16)), Key: "0123456789abcdef", Hash: sha256.Sum256([]byte("{}")), Size: 2}
	r.Table[0] = 1
	r.sign(key)
	return r
}

func TestRecordRoundTripAndTamper(t *testing.T) {
	r := sampleRecord(t)
	b := r.Marshal()
	got, err := UnmarshalRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != r.ID() || !verifySignature(got) {
		t.Fatal("round trip changed the record")
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		dec, err := UnmarshalRecord(c)
		if err != nil {
			continue // structure broken: rejected
		}
		if verifySignature(dec) {
			t.Fatalf("flipping byte %d left a valid signature", i)
		}
	}
	if _, err := UnmarshalRecord(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated record: %v", err)
	}
	if _, err := UnmarshalRecord(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("record with a trailing byte: %v", err)
	}
}

// FuzzUnmarshalRecord: arbitrary bytes never panic; whatever decodes encodes back to the same bytes
// (one record, one encoding: the id cannot be changed without changing the record).
func FuzzUnmarshalRecord(f *testing.F) {
	f.Add(sampleRecord(f).Marshal())
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", r.Marshal(), b)
		}
		_ = r.checkShape()
	})
}

// FuzzControlFrames feeds arbitrary bytes to the frame reader and every payload parser a link
// runs on untrusted input.
func FuzzControlFrames(f *testing.F) {
	rec := sampleRecord(f).Marshal()
	f.Add(appendFrame(nil, frameLogEntry, recordPayload{seq: 7, record: rec, body: []byte("{}")}.marshal(true)))
	f.Add(appendFrame(nil, frameRecord, recordPayload{record: rec}.marshal(false)))
	f.Add(appendFrame(nil, frameWant, marshalIDs([]RecordID{{1}, {2}})))
	f.Add(appendFrame(nil, frameSyncStart, []byte{5, syncTail}))
	f.Add(appendFrame(nil, frameReconcileReply, []byte{3, 1, 0x61}))
	f.Add([]byte{byte(frameMessage), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 16 {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			if len(fr.payload) > maxFrameSize {
				t.Fatalf("frame of %d bytes accepted", len(fr.payload))
			}
			p := fr.payload
			_, _ = parseRecordPayload(p, true)
			_, _ = parseRecordPayload(p, false)
			_, _, _ = parseSyncStart(p)
			_, _, _ = parseReconcileReply(p)
			_, _ = parseUvarint(p, "x")
			if ids, err := parseIDs(p); err == nil && !bytes.Equal(marshalIDs(ids), p) {
				t.Fatal("want ids do not round-trip")
			}
			if h, err := parseHello(p); err == nil && !bytes.Equal(h.marshal(), p) {
				t.Fatal("hello does not round-trip")
			}
			if m, err := parseMessage(p, 64<<10); err == nil && !bytes.Equal(m.marshal(), p) {
				t.Fatal("message does not round-trip")
			}
		}
	})
}

// FuzzCanonicalJSON: canonical JSON is a fixed point and keeps the value.
func FuzzCanonicalJSON(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[true,null,"x"],"c":{"z":1e400,"y":12345678901234567890}}`))
	f.Add([]byte(`"<&>"`))
	f.Add([]byte(`[] []`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalJSON(json.RawMessage(b))
		if err != nil {
			return
		}
		again, err := CanonicalJSON(json.RawMessage(c))
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not a fixed point: %s -> %s (%v)", c, again, err)
		}
		if !json.Valid(c) {
			t.Fatalf("invalid JSON out: %s", c)
		}
	})
}
