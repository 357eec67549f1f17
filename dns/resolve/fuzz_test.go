package resolve

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary payloads to DecodeRequest, as a node receives them from any
// node of the network: it never panics, and what it accepts re-encodes to an equal request.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"type":"dns-resolve","v":1,"id":"0123456789abcdef0123456789abcdef","from":"0123456789abcdef0123456789abcdef","name":"example.com.","qtype":"MX","time":1}`))
	f.Add([]byte(`{"type":"dns-resolve","v":1,"name":"\\000.","qtype":"TYPE65280"}`))
	f.Add([]byte(`{"type":"heartbeat"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRequest(again)
		if err != nil || back != r {
			t.Fatalf("re-encoded request: %+v %v", back, err)
		}
	})
}

// FuzzDecodeAnswer does the same for answers.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(`{"type":"dns-resolve-answer","v":1,"id":"0123456789abcdef0123456789abcdef","to":"0123456789abcdef0123456789abcdef","node":"00112233445566778899aabbccddeeff","name":"example.com.","qtype":"MX","rcode":"NOERROR","records":["example.com. MX 10 mail.example.com."],"ms":3}`))
	f.Add([]byte(`{"type":"dns-resolve-answer","v":1,"id":"0123456789abcdef0123456789abcdef","to":"0123456789abcdef0123456789abcdef","node":"00112233445566778899aabbccddeeff","name":"example.com.","qtype":"A","error":"timeout","records":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnswer(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeAnswer(again)
		if err != nil || !reflect.DeepEqual(back, a) {
			t.Fatalf("re-encoded answer: %+v %v", back, err)
		}
		_ = Compare([]Answer{a, a})
	})
}
