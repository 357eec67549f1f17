package h1_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dt-cdn/dt/internal/h1"
)

// TestDateOfEveryResponse checks that every response carries a Date of the time it was sent,
// whatever way its header section leaves: alone, with a body, before a file sent by sendfile,
// with a header block, and several pipelined responses gathered into one write.
func TestDateOfEveryResponse(t *testing.T) {
	path := writeTempFile(t, []byte(strings.Repeat("file body ", 10000)))
	var hb h1.HeaderBlock
	if err := hb.Add("Content-Type", "text/plain"); err != nil {
		t.Fatal(err)
	}
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/small":
			io.WriteString(w, "small")
		case "/block":
			w.(h1.HeaderBlockWriter).WriteHeaderBlock(http.StatusOK, &hb, 5)
			io.WriteString(w, "block")
		case "/file":
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			fi, _ := f.Stat()
			w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
			io.Copy(w, f)
		}
	}), func(s *h1.Server) { s.SendTimeout = time.Minute })
	paths := []string{"/small", "/empty", "/block", "/file", "/small", "/small", "/block", "/empty"}
	c := dial(t, addr)
	before := time.Now().Truncate(time.Second)
	for _, p := range paths { // one at a time
		c.send(get(p))
		checkDate(t, p, c.readReply("GET").resp, before)
	}
	var burst strings.Builder // then pipelined
	for _, p := range paths {
		burst.WriteString(get(p))
	}
	c.send(burst.String())
	for _, p := range paths {
		checkDate(t, p+", pipelined", c.readReply("GET").resp, before)
	}
}

// checkDate fails the test unless resp has a Date between not before and now.
func checkDate(t *testing.T, what string, resp *http.Response, notBefore time.Time) {
	t.Helper()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil || d.Before(notBefore) || d.After(time.Now()) {
		t.Errorf("%s: Date %q (%v), want a time from %v to now", what, resp.Header.Get("Date"), err, notBefore)
	}
}
