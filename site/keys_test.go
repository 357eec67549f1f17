package site

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dt-cdn/dt/blobs"
)

func TestKeys(t *testing.T) {
	h := blobs.Sum([]byte("x"))
	if k := BlobKey(h); k != "blob/"+h.String() {
		t.Fatalf("BlobKey = %q", k)
	}
	if got, ok := ParseBlobKey(BlobKey(h)); !ok || got != h {
		t.Fatal("ParseBlobKey does not invert BlobKey")
	}
	id := DeployIDOf([]byte("m"))
	if k := DeployKey(id); k != "deploy/"+id.String() {
		t.Fatalf("DeployKey = %q", k)
	}
	if got, ok := ParseDeployKey(DeployKey(id)); !ok || got != id {
		t.Fatal("ParseDeployKey does not invert DeployKey")
	}
	for _, k := range []string{CurrentKey, "blob/", "blob/" + strings.ToUpper(h.String()), DeployKey(id), "x/" + h.String()} {
		if _, ok := ParseBlobKey(k); ok {
			t.Errorf("ParseBlobKey(%q) accepted", k)
		}
	}
	if _, ok := ParseDeployKey(BlobKey(h)); ok {
		t.Error("ParseDeployKey accepted a blob key")
	}
}

func TestBlobRoundTrip(t *testing.T) {
	random := make([]byte, 100_000)
	rand.Read(random)
	inputs := map[string]struct {
		raw []byte
		enc string
	}{
		"empty":  {nil, BlobIdentity},
		"byte":   {[]byte{7}, BlobIdentity},
		"text":   {bytes.Repeat([]byte("<p>hello, world</p>\n"), 5000), BlobZstd},
		"random": {random, BlobIdentity},
	}
	for name, in := range inputs {
		body, err := EncodeBlob(in.raw)
		if err != nil {
			t.Fatal(err)
		}
		var obj BlobObject
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Enc != in.enc || obj.Size != int64(len(in.raw)) || obj.Hash != blobs.Sum(in.raw) {
			t.Errorf("%s: object %s/%d/%s, want %s", name, obj.Enc, obj.Size, obj.Hash.Short(), in.enc)
		}
		if in.enc == BlobZstd && len(body) >= len(in.raw) {
			t.Errorf("%s: zstd object of %d bytes for %d raw bytes", name, len(body), len(in.raw))
		}
		h, raw, err := DecodeBlob(body, int64(len(in.raw)))
		if err != nil || h != blobs.Sum(in.raw) || !bytes.Equal(raw, in.raw) {
			t.Errorf("%s: DecodeBlob = %s, %d bytes, %v", name, h.Short(), len(raw), err)
		}
		if len(in.raw) > 0 {
			if _, _, err := DecodeBlob(body, int64(len(in.raw))-1); !errors.Is(err, ErrBlobTooLarge) {
				t.Errorf("%s: limit one byte short: err = %v, want ErrBlobTooLarge", name, err)
			}
		}
	}
}

func TestDecodeBlobRefuses(t *testing.T) {
	text := bytes.Repeat([]byte("abcdefgh"), 1000)
	enc, _ := blobCodec()
	z := enc.EncodeAll(text, nil)
	obj := func(h blobs.Hash, size int64, e string, data []byte) []byte {
		b, _ := json.Marshal(BlobObject{Hash: h, Size: size, Enc: e, Data: data})
		return b
	}
	good := blobs.Sum(text)
	tests := map[string]struct {
		body []byte
		want error
	}{
		"not json":         {[]byte("{"), ErrInvalidBlob},
		"no hash":          {[]byte(`{"size":1,"enc":"identity","data":"eA=="}`), ErrInvalidBlob},
		"bad base64":       {[]byte(`{"hash":"` + good.String() + `","size":1,"enc":"identity","data":"!!"}`), ErrInvalidBlob},
		"wrong hash":       {obj(blobs.Sum([]byte("other")), int64(len(text)), BlobIdentity, text), blobs.ErrHashMismatch},
		"short identity":   {obj(good, int64(len(text))+1, BlobIdentity, text), ErrInvalidBlob},
		"negative size":    {obj(good, -1, BlobIdentity, nil), ErrInvalidBlob},
		"unknown enc":      {obj(good, int64(len(text)), "br", text), ErrInvalidBlob},
		"zstd too small":   {obj(good, int64(len(text))-1, BlobZstd, z), ErrInvalidBlob},
		"zstd too large":   {obj(good, int64(len(text))+1, BlobZstd, z), ErrInvalidBlob},
		"zstd garbage":     {obj(good, int64(len(text)), BlobZstd, []byte("not zstd at all")), ErrInvalidBlob},
		"zstd not smaller": {obj(good, 4, BlobZstd, z), ErrInvalidBlob},
		"zstd tampered": {obj(good, int64(len(text)), BlobZstd, func() []byte {
			t := bytes.Clone(z)
			t[len(t)/2] ^= 1
			return t
		}()), nil},
		"over limit": {obj(good, 1<<40, BlobZstd, z), ErrBlobTooLarge},
		"huge body":  {bytes.Repeat([]byte(" "), 1<<20), ErrBlobTooLarge},
	}
	for name, tt := range tests {
		h, raw, err := DecodeBlob(tt.body, 1<<16)
		if err == nil || raw != nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: DecodeBlob = %s, %d bytes, %v; want %v", name, h.Short(), len(raw), err, tt.want)
		}
	}
}

// TestDecodeBlobBomb checks that a zstd bomb (a gigabyte of zeros in a few kilobytes) claiming
// to be small is refused without decoding it all.
func TestDecodeBlobBomb(t *testing.T) {
	w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	w.Reset(&bomb) // streaming: no content size in the frame header
	zeros := make([]byte, 1<<20)
	for range 1024 {
		w.Write(zeros)
	}
	w.Close()
	body, _ := json.Marshal(BlobObject{Hash: blobs.Sum(zeros), Size: 1 << 20, Enc: BlobZstd, Data: bomb.Bytes()})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = DecodeBlob(body, 1<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalidBlob) {
		t.Fatalf("bomb: err = %v, want ErrInvalidBlob", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Fatalf("bomb made DecodeBlob allocate %d MiB", alloc>>20)
	}
}

func TestCurrent(t *testing.T) {
	c := Current{Deploy: DeployIDOf([]byte("m")), Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 7200))}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"deploy":"` + c.Deploy.String() + `","time":"2025-01-02T01:04:05Z"}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	back, err := ParseCurrent(b)
	if err != nil || back.Deploy != c.Deploy || !back.Time.Equal(c.Time) {
		t.Fatalf("ParseCurrent = %+v, %v", back, err)
	}
	for _, bad := range []string{`{}`, `{"deploy":"x","time":"2025-01-02T01:04:05Z"}`, `{"deploy":"` + c.Deploy.String() + `"}`,
		want[:len(want)-1] + `,"extra":1}`, want + `{}`} {
		if _, err := ParseCurrent([]byte(bad)); !errors.Is(err, ErrInvalidCurrent) {
			t.Errorf("ParseCurrent(%s) = %v, want ErrInvalidCurrent", bad, err)
		}
	}
}

// FuzzDecodeBlob checks that DecodeBlob never panics, never returns more than the limit, and
// returns only data that hashes to the hash it returns.
func FuzzDecodeBlob(f *testing.F) {
	for _, raw := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("abc"), 300)} {
		b, err := EncodeBlob(raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"hash":"` + strings.Repeat("00", 32) + `","size":5,"enc":"zstd","data":"KLUv/QBYAQAAeA=="}`))
	f.Add([]byte(`{"size":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 16
		h, raw, err := DecodeBlob(body, limit)
		if err != nil {
			if raw != nil {
				t.Fatal("data returned with an error")
			}
			return
		}
		if len(raw) > limit || blobs.Sum(raw) != h {
			t.Fatalf("returned %d bytes that do not hash to %s", len(raw), h.Short())
		}
		again, err := EncodeBlob(raw)
		if err != nil {
			t.Fatal(err)
		}
		if h2, raw2, err := DecodeBlob(again, limit); err != nil || h2 != h || !bytes.Equal(raw2, raw) {
			t.Fatalf("re-encoded blob does not decode: %v", err)
		}
	})
}

func BenchmarkEncodeBlob(b *testing.B) {
	for _, c := range blobBenchInputs() {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			for b.Loop() {
				if _, err := EncodeBlob(c.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeBlob(b *testing.B) {
	for _, c := range blobBenchInputs() {
		body, err := EncodeBlob(c.raw)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			for b.Loop() {
				if _, _, err := DecodeBlob(body, 4<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type blobBenchInput struct {
	name string
	raw  []byte
}

// blobBenchInputs are a 1 MiB chunk of HTML-like text (compressible) and of random bytes (an
// image or an already-compressed variant).
func blobBenchInputs() []blobBenchInput {
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		text.WriteString("<li class=\"item\"><a href=\"/posts/")
		text.WriteString(strings.Repeat("x", i%17))
		text.WriteString("\">A post about something</a></li>\n")
	}
	random := make([]byte, 1<<20)
	rand.Read(random)
	return []blobBenchInput{{"text-1MiB", text.Bytes()[:1<<20]}, {"random-1MiB", random}}
}

// FuzzParseEncodedBlob checks the fast reader of blob objects against encoding/json: whatever it
// accepts, json.Unmarshal decodes to the same object. Objects EncodeBlob writes take the fast way.
func FuzzParseEncodedBlob(f *testing.F) {
	for _, raw := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("abc"), 300), {0, 1, 2, 0xff}} {
		b, err := EncodeBlob(raw)
		if err != nil {
			f.Fatal(err)
		}
		if _, ok := parseEncodedBlob(b); !ok && len(raw) > 0 { // an empty blob's data is null
			f.Fatalf("EncodeBlob's own form %s is not read the fast way", b)
		}
		f.Add(b)
	}
	h := strings.Repeat("ab", 32)
	for _, s := range []string{
		`{"hash":"` + h + `","size":007,"enc":"identity","data":""}`,
		`{"hash":"` + h + `","size":1,"enc":"identity","data":"eA=="} `,
		`{"hash":"` + h + `","size":1,"enc":"identity","data":"eA="}`,
		`{"hash":"` + strings.ToUpper(h) + `","size":1,"enc":"identity","data":"eA=="}`,
		`{"hash":"` + h + `","size":99999999999999999999,"enc":"zstd","data":"eA=="}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseEncodedBlob(body)
		if !ok {
			return
		}
		var slow BlobObject
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast read accepted %q, encoding/json refuses it: %v", body, err)
		}
		if fast.Hash != slow.Hash || fast.Size != slow.Size || fast.Enc != slow.Enc || !bytes.Equal(fast.Data, slow.Data) {
			t.Fatalf("%q: fast read %+v, encoding/json %+v", body, fast, slow)
		}
	})
}
