package ipguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestPersistenceRoundTrip(t *testing.T) {
	store := &memStore{}
	h := newHarness(t, Config{Store: store})
	h.blockByFailures(t, "192.0.2.1") // ends at 1h: will have ended by the restart
	h.clock.Advance(30 * time.Minute)
	for i := range 40 {
		h.blockByFailures(t, prefix64(3, i)) // 40 /64s and their /48, until 1h30m
	}
	h.clock.Advance(20 * time.Minute)
	h.blockByFailures(t, "198.51.100.7") // until 1h50m
	if got := store.Saves(); got != 42 {
		t.Fatalf("%d saves for 42 block changes, want one each", got)
	}

	h.clock.Advance(20 * time.Minute) // 1h10m: 192.0.2.1 has ended
	before := h.Blocks()
	g2, err := New(Config{Store: store, Now: h.clock.Now})
	if err != nil {
		t.Fatalf("New with the same store: %v", err)
	}
	after := g2.Blocks()
	if len(after) != 42 || !slices.EqualFunc(before, after, equalBlock) {
		t.Fatalf("after a restart Blocks() = %d blocks, want the %d from before", len(after), len(before))
	}
	for _, b := range after {
		if b.Prefix == netip.MustParsePrefix("192.0.2.1/32") {
			t.Fatal("an ended block was loaded as in force")
		}
	}
	if _, ok := g2.Blocked(netip.MustParseAddr(prefix64(3, 999))); !ok {
		t.Fatal("the /48 block did not survive the restart")
	}

	// The ended block's count survived as history: the next block is a second one.
	h2 := &harness{Guard: g2, clock: h.clock}
	if b := h2.blockByFailures(t, "192.0.2.1"); b.Count != 2 || b.Until.Sub(h.clock.Now()) != 6*time.Hour {
		t.Fatalf("block after restart = %+v, want the second (6 h)", b)
	}

	// After BlockMemory nothing of it is loaded.
	h.clock.Advance(8 * 24 * time.Hour)
	g3, err := New(Config{Store: store, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g3.blocks.entries); n != 0 || len(g3.Blocks()) != 0 {
		t.Fatalf("%d entries loaded 8 days after every block ended, want 0", n)
	}
}

func equalBlock(a, b Block) bool {
	return a.Prefix == b.Prefix && a.Until.Equal(b.Until) && a.Reason == b.Reason && a.Count == b.Count
}

func TestCorruptStateStartsEmpty(t *testing.T) {
	valid := encodeState([]Block{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: epoch.Add(time.Hour), Reason: BlockReasonFailures, Count: 1}})
	flipped := slices.Clone(valid)
	flipped[len(stateMagic)+3] ^= 0x40
	for name, data := range map[string][]byte{
		"garbage":   []byte("not a state at all"),
		"truncated": valid[:len(valid)-1],
		"bit flip":  flipped,
		"version 9": append([]byte(stateMagic+"\x09"), valid[len(stateMagic)+1:]...),
	} {
		t.Run(name, func(t *testing.T) {
			store := &memStore{data: data}
			h := newHarness(t, Config{Store: store})
			if len(h.Blocks()) != 0 || h.blocked("192.0.2.1") {
				t.Fatal("blocks loaded from a corrupt state")
			}
			if h.logs.count("stored blocks are unreadable; starting with none") != 1 {
				t.Fatal("the corrupt state was not logged")
			}
			if got := h.metric(t, "state_errors_total", "op", "decode"); got != 1 {
				t.Fatalf("state_errors_total{decode} = %v, want 1", got)
			}
			h.blockByFailures(t, "198.51.100.1")
			if bs, err := decodeState(store.data); err != nil || len(bs) != 1 {
				t.Fatalf("the next block did not overwrite the corrupt state: %v, %v", bs, err)
			}
		})
	}
}

func TestStoreErrors(t *testing.T) {
	errDisk := errors.New("disk on fire")
	if _, err := New(Config{Store: &memStore{loadErr: errDisk}}); !errors.Is(err, errDisk) {
		t.Fatalf("New with a failing Load = %v, want it to wrap the store's error", err)
	}

	store := &memStore{saveErr: errDisk}
	h := newHarness(t, Config{Store: store})
	h.blockByFailures(t, "192.0.2.1") // the block holds though the save failed
	if got := h.metric(t, "state_errors_total", "op", "save"); got != 1 {
		t.Fatalf("state_errors_total{save} = %v, want 1", got)
	}
	if _, err := h.Unblock(netip.MustParsePrefix("192.0.2.1/32")); !errors.Is(err, errDisk) {
		t.Fatalf("Unblock with a failing Save = %v, want the store's error", err)
	}
	if h.blocked("192.0.2.1") {
		t.Fatal("Unblock did not lift the block when saving failed")
	}
	store.mu.Lock()
	store.saveErr = nil
	store.mu.Unlock()
	h.blockByFailures(t, "192.0.2.2")
	if bs, err := decodeState(store.data); err != nil || len(bs) != 1 || bs[0].Prefix != netip.MustParsePrefix("192.0.2.2/32") {
		t.Fatalf("stored after recovery: %+v, %v; want only 192.0.2.2/32", bs, err)
	}
}

// stateSeeds are valid states for the round-trip test and the fuzz corpus.
func stateSeeds() [][]Block {
	return [][]Block{
		nil,
		{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: epoch, Reason: BlockReasonFailures, Count: 1}},
		{
			{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Until: epoch.Add(time.Hour), Reason: BlockReasonSubnet, Count: 2},
			{Prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), Until: epoch.Add(-time.Hour), Reason: BlockReasonConnections, Count: 300},
			{Prefix: netip.MustParsePrefix("0.0.0.0/32"), Until: time.Unix(0, 0).UTC(), Reason: "a_future_reason_9", Count: maxBlockCount},
		},
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, blocks := range stateSeeds() {
		data := encodeState(blocks)
		got, err := decodeState(data)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", blocks, err)
		}
		want := slices.Clone(blocks)
		sortBlocks(want)
		if !slices.EqualFunc(got, want, equalBlock) {
			t.Fatalf("decode(encode(x)) = %+v, want %+v", got, want)
		}
		if again := encodeState(got); !bytes.Equal(again, data) {
			t.Fatal("encoding is not canonical")
		}
	}
}

// withCRC returns body followed by its CRC-32C, the framing encodeState writes.
func withCRC(body []byte) []byte {
	return binary.BigEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, castagnoli))
}

func TestDecodeStateRejects(t *testing.T) {
	head := []byte(stateMagic + "\x01")
	entry := func(fam byte, addr []byte, bits byte, count uint64, reason string) []byte {
		b := append([]byte{fam}, addr...)
		b = append(b, bits)
		b = binary.BigEndian.AppendUint64(b, uint64(epoch.UnixNano()))
		b = binary.AppendUvarint(b, count)
		b = binary.AppendUvarint(b, uint64(len(reason)))
		return append(b, reason...)
	}
	state := func(n uint64, entries ...[]byte) []byte {
		b := binary.AppendUvarint(slices.Clone(head), n)
		for _, e := range entries {
			b = append(b, e...)
		}
		return withCRC(b)
	}
	v4 := []byte{192, 0, 2, 1}
	v6 := netip.MustParseAddr("2001:db8::").AsSlice()
	good := entry(4, v4, 32, 1, "x")
	if _, err := decodeState(state(1, good)); err != nil {
		t.Fatalf("the valid base case fails: %v", err)
	}
	tests := map[string][]byte{
		"empty":              nil,
		"bad magic":          withCRC([]byte("XXXX\x01\x00")),
		"bad checksum":       append(append(slices.Clone(head), 0), 1, 2, 3, 4),
		"count beyond data":  state(2, good),
		"huge count":         state(1<<40, good),
		"trailing bytes":     state(1, good, []byte{0}),
		"duplicate":          state(2, good, good),
		"out of order":       state(2, entry(4, []byte{192, 0, 2, 2}, 32, 1, "x"), good),
		"non-minimal varint": state(1, append(entry(4, v4, 32, 1, "x")[:14], 0x81, 0x00, 1, 'x')),
		"family 5":           state(1, entry(5, v4, 32, 1, "x")),
		"IPv4 /24":           state(1, entry(4, v4, 24, 1, "x")),
		"IPv4 /33":           state(1, entry(4, v4, 33, 1, "x")),
		"IPv6 /128":          state(1, entry(6, v6, 128, 1, "x")),
		"IPv6 /64 host bits": state(1, entry(6, netip.MustParseAddr("2001:db8::1").AsSlice(), 64, 1, "x")),
		"count zero":         state(1, entry(4, v4, 32, 0, "x")),
		"count too high":     state(1, entry(4, v4, 32, maxBlockCount+1, "x")),
		"empty reason":       state(1, entry(4, v4, 32, 1, "")),
		"reason with space":  state(1, entry(4, v4, 32, 1, "a b")),
		"reason too long":    state(1, entry(4, v4, 32, 1, string(bytes.Repeat([]byte("a"), maxReasonLen+1)))),
		"truncated entry":    state(1, good[:len(good)-2]),
		"truncated IPv6":     state(1, entry(6, v6, 64, 1, "auth_failures")[:20]),
	}
	for name, data := range tests {
		_, err := decodeState(data)
		if !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: decodeState = %v, want ErrCorruptState", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func FuzzDecodeState(f *testing.F) {
	for _, blocks := range stateSeeds() {
		data := encodeState(blocks)
		f.Add(data)
		f.Add(data[:len(data)-crcLen]) // a body, exercised below with its CRC fixed up
	}
	f.Add([]byte{})
	f.Add([]byte(stateMagic + "\x01\x01\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		// Random bytes almost never carry a valid CRC; also decode data as a body with a
		// correct one, so the fuzzer reaches the entry parser.
		checkDecode(t, withCRC(data))
	})
}

// checkDecode decodes data and, if it is accepted, checks that it is exactly the canonical
// encoding of valid blocks.
func checkDecode(t *testing.T, data []byte) {
	blocks, err := decodeState(data)
	if err != nil {
		if !errors.Is(err, ErrCorruptState) {
			t.Fatalf("error %v does not wrap ErrCorruptState", err)
		}
		return
	}
	for i, b := range blocks {
		if !validBlockPrefix(b.Prefix) || !validReason(b.Reason) || b.Count < 1 || b.Count > maxBlockCount {
			t.Fatalf("accepted an invalid entry %+v", b)
		}
		if i > 0 && comparePrefixes(blocks[i-1].Prefix, b.Prefix) >= 0 {
			t.Fatalf("accepted entries out of order: %v before %v", blocks[i-1].Prefix, b.Prefix)
		}
	}
	if again := encodeState(blocks); !bytes.Equal(again, data) {
		t.Fatalf("accepted non-canonical bytes %x (canonical %x)", data, again)
	}
}
