package rbsr

// Conformance vectors from the Negentropy reference repository (github.com/hoytech/negentropy,
// MIT license), taken from the tests of its Kotlin port, which check byte-exact agreement with the
// C++ and JavaScript implementations:
//
//   - kotlin/src/test/kotlin/com/vitorpamplona/negentropy/message/VarIntTest.kt
//   - .../message/MessageBuilderTest.kt and MessageConsumerTest.kt (timestamps, bounds)
//   - .../fingerprint/FingerprintTest.kt
//   - .../NegentropyBasicTest.kt (first message over three items, unsupported version)
//   - .../NegentropyTwoRoundsTest.kt with kotlin/src/test/resources/client.txt and server.txt
//     (copied to testdata/, see testdata/README)

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustID(tb testing.TB, s string) [32]byte {
	tb.Helper()
	return [32]byte(mustHex(tb, s))
}

func TestVarintVectors(t *testing.T) {
	tests := []struct {
		n   uint64
		hex string
	}{
		{0, "00"}, {1, "01"}, {2, "02"}, {127, "7f"}, {128, "8100"}, {255, "817f"},
		{256, "8200"}, {65535, "83ff7f"}, {65536, "848000"}, {65537, "848001"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(appendVarint(nil, tt.n)); got != tt.hex {
			t.Errorf("appendVarint(%d) = %s, want %s", tt.n, got, tt.hex)
		}
		v, n, err := readVarint(mustHex(t, tt.hex))
		if err != nil || v != tt.n || n != len(tt.hex)/2 {
			t.Errorf("readVarint(%s) = %d, %d, %v; want %d", tt.hex, v, n, err, tt.n)
		}
	}
}

func TestTimestampAndBoundVectors(t *testing.T) {
	// Consecutive timestamps in one message are sent as 1 + the offset from the previous one.
	e := newEncoder()
	want := []string{"86a091d70e", "02", "02", "02"}
	for i, ts := range []uint64{1678011277, 1678011278, 1678011279, 1678011280} {
		n := len(e.buf)
		e.bound(bound{ts: ts})
		// Drop the zero prefix length the bound adds after the timestamp.
		if got := hex.EncodeToString(e.buf[n : len(e.buf)-1]); got != want[i] {
			t.Errorf("timestamp %d encoded as %s, want %s", ts, got, want[i])
		}
	}
	d := decoder{buf: mustHex(t, "86a091d70e0002000200")}
	for _, ts := range []uint64{1678011277, 1678011278, 1678011279} {
		b, err := d.bound()
		if err != nil || b.ts != ts {
			t.Fatalf("decoded %d, %v; want %d", b.ts, err, ts)
		}
	}

	const boundHex = "86a091d70e20eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c"
	it := Item{Timestamp: 1678011277, ID: mustID(t, "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")}
	e = newEncoder()
	e.bound(itemBound(it))
	if got := hex.EncodeToString(e.buf[1:]); got != boundHex {
		t.Errorf("bound encoded as %s, want %s", got, boundHex)
	}
	d = decoder{buf: mustHex(t, boundHex)}
	b, err := d.bound()
	if err != nil || b != itemBound(it) || !d.empty() {
		t.Errorf("bound decoded as %+v, %v", b, err)
	}
}

// referenceItems are the three items of the Kotlin tests' default storage.
func referenceItems(t *testing.T) []Item {
	return []Item{
		{1678011277, mustID(t, "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")},
		{1678011278, mustID(t, "39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0")},
		{1678011279, mustID(t, "abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba")},
	}
}

func TestFingerprintVectors(t *testing.T) {
	items := referenceItems(t)
	tests := []struct {
		n, lo, hi int
		want      string
	}{
		{1, 0, 1, "6d74e1212fcafc8a81d090f0ffbde8b0"},
		{2, 0, 2, "96b26d110825d4b1805fc56988a3e65d"},
		{3, 0, 3, "c15ce60f185fd24ae341076caa93daa5"},
		{3, 0, 2, "96b26d110825d4b1805fc56988a3e65d"},
	}
	for _, tt := range tests {
		s := NewSet(items[:tt.n])
		fp := s.fingerprint(tt.lo, tt.hi)
		if got := hex.EncodeToString(fp[:]); got != tt.want {
			t.Errorf("fingerprint of %d items [%d,%d) = %s, want %s", tt.n, tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestInitiateVector(t *testing.T) {
	const want = "6100000203" +
		"eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c" +
		"39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0" +
		"abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba"
	s := NewSet(referenceItems(t))
	msg, err := NewInitiator(s, 0).Initiate()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(msg); got != want {
		t.Errorf("Initiate = %s, want %s", got, want)
	}
	// Reconciling a set with itself finishes at once with nothing to do.
	have, need, st := reconcile(t, s, s, 0)
	if len(have) != 0 || len(need) != 0 || st.rounds != 1 {
		t.Errorf("self-reconcile: have %d need %d rounds %d", len(have), len(need), st.rounds)
	}
}

func TestUnsupportedVersionVector(t *testing.T) {
	// The reference server answers "61" (its own version) to this message; see Respond's doc.
	_, err := NewResponder(NewSet(referenceItems(t)), 0).Respond(mustHex(t, "62aabbccddeeff"))
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Respond(0x62...) error = %v, want ErrUnsupportedVersion", err)
	}
	// An initiator that gets the reference's downgrade reply reports it the same way.
	ini := NewInitiator(NewSet(referenceItems(t)), 0)
	if _, err := ini.Initiate(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ini.Reconcile([]byte{0x62}); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Reconcile(0x62) error = %v, want ErrUnsupportedVersion", err)
	}
}

// loadItems reads "timestamp,hex id" lines, skipping blank ones.
func loadItems(t *testing.T, path string) []Item {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var items []Item
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		tsStr, idStr, ok := strings.Cut(line, ",")
		ts, err := strconv.ParseUint(tsStr, 10, 64)
		if !ok || err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		items = append(items, Item{Timestamp: ts, ID: mustID(t, idStr)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return items
}

func readHexFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return mustHex(t, string(b))
}

func TestTwoRoundsVector(t *testing.T) {
	client := NewSet(loadItems(t, "testdata/tworounds-client.txt"))
	server := NewSet(loadItems(t, "testdata/tworounds-server.txt"))
	if client.Len() != 30 || server.Len() != 30 {
		t.Fatalf("loaded %d and %d items, want 30 each", client.Len(), server.Len())
	}
	ini := NewInitiator(client, 0)
	init, err := ini.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	if want := readHexFile(t, "testdata/tworounds-init.hex"); !bytes.Equal(init, want) {
		t.Fatalf("Initiate =\n%x\nwant\n%x", init, want)
	}
	reply, err := NewResponder(server, 0).Respond(init)
	if err != nil {
		t.Fatal(err)
	}
	if want := readHexFile(t, "testdata/tworounds-reply.hex"); !bytes.Equal(reply, want) {
		t.Fatalf("Respond =\n%x\nwant\n%x", reply, want)
	}
	next, have, need, err := ini.Reconcile(reply)
	if err != nil || next != nil {
		t.Fatalf("Reconcile = %x, %v; want nil, nil", next, err)
	}
	wantHave := []string{
		"f8c2e717ae854234abcd89b852002d52c52101edd690ae305f61d6215ccfd114",
		"71feb8cdfe5cb5e3a61550b6d41a395f1537721ce7f831cef2ed270390c28785",
		"8406d9844fb8f5a5baf3a5cd7478afa6e43d7088b4416dc2013a53fa3447ee95",
		"ed3784f35f4029450f498d8c3f6acc61d90c7706f77ca1f4f75240f49aafe919",
		"6f8d146c74f5574840e8d82897a757da4b67774eafdd4bc5fdfb3ec6febfccf5",
		"5144bfaa00b30f7ce4219af75e452c1389ddf2a626390b3f5c96b9c59e5d9f5b",
	}
	wantNeed := []string{
		"ef3e606c1b9291b7ba1eaa119b431763ae8a41c0da9f60c8df81e6cb85f8fc75",
		"3ada797b897747c1f6a389025bc03aba5c706f22f7bd60e4a2d9dabcfe21c324",
		"7d929283afc8830733b84953fcc09a6b7898581cb557aad4e0c0d7382ba7f1a7",
		"556ea7b8a8e4c8ffadea26e689c7d1fb24e83873e839fa3f94c630ccd5b5567e",
		"c820f4c1784abda82e640fc20cbfe0f7f0544da4cfe74d382392d73375d2503d",
		"5650fc157cb1c947b00cee120fd71b6e93dc6dfdb87f092f3d0c52b31d74675c",
	}
	checkIDs(t, "have", have, wantHave)
	checkIDs(t, "need", need, wantNeed)
}

func checkIDs(t *testing.T, what string, got [][32]byte, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d ids, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if h := hex.EncodeToString(got[i][:]); h != want[i] {
			t.Errorf("%s[%d] = %s, want %s", what, i, h, want[i])
		}
	}
}
