package accesslog

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendLine appends r's line in format f, newline included. c caches the time's text per
// second; nil formats it anew.
func appendLine(dst []byte, r *record, f Format, truncateIP bool, c *clock) []byte {
	if f == Combined {
		return appendCombined(dst, r, truncateIP, c)
	}
	return appendJSON(dst, r, truncateIP, c)
}

// appendJSON appends r as one JSON object and a newline. Strings are escaped as RFC 8259 §7
// requires, with invalid UTF-8 replaced by U+FFFD so that every line parses. Each constant
// part holds the quotes around it, so that a field costs two appends.
func appendJSON(dst []byte, r *record, truncateIP bool, c *clock) []byte {
	dst = append(dst, `{"time":"`...)
	dst = appendRFC3339Nano(dst, r.unixNano, c)
	dst = appendJSONText(append(dst, `","site":"`...), r.get(fSite))
	dst = appendJSONText(append(dst, `","host":"`...), r.get(fHost))
	dst = appendJSONText(append(dst, `","method":"`...), r.get(fMethod))
	dst = appendJSONText(append(dst, `","path":"`...), r.get(fURI))
	dst = strconv.AppendUint(append(dst, `","status":`...), uint64(r.status), 10)
	dst = strconv.AppendInt(append(dst, `,"bytes":`...), r.bytes, 10)
	dst = appendSeconds(append(dst, `,"duration":`...), time.Duration(r.duration))
	dst = appendJSONText(append(dst, `,"protocol":"`...), r.get(fProto))
	dst = append(append(dst, `","tls":"`...), tlsName(r.tlsVersion)...) // digits, dots, "0x": nothing to escape
	dst = appendJSONText(append(dst, `","encoding":"`...), r.get(fEncoding))
	dst = appendJSONText(append(dst, `","referer":"`...), r.get(fReferer))
	dst = appendJSONText(append(dst, `","user_agent":"`...), r.get(fUserAgent))
	dst = append(dst, `","client":"`...)
	if ip, ok := plainIPv4(r.get(fRemote)); ok && !truncateIP {
		dst = append(dst, ip...) // digits and dots: nothing to escape
	} else {
		var scratch [64]byte
		dst = appendJSONText(dst, clientAddr(scratch[:0], r.get(fRemote), truncateIP))
	}
	return append(dst, "\"}\n"...)
}

// jsonPlain marks the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONText appends s escaped as the inside of a JSON string. A string that needs no
// escape, nearly every request's field, is appended at once; otherwise runs of bytes that need
// none are.
func appendJSONText[S []byte | string](dst []byte, s S) []byte {
	i := plainPrefix(s)
	if i == len(s) {
		return append(dst, s...)
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
			if r != utf8.RuneError || n != 1 {
				i += n // valid: part of the run
				i += plainPrefix(s[i:])
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < utf8.RuneSelf: // a control character
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, `\ufffd`...)
		}
		i++
		start = i
		i += plainPrefix(s[i:])
	}
	return append(dst, s[start:]...)
}

// appendCombined appends r in the Combined Log Format and a newline.
func appendCombined(dst []byte, r *record, truncateIP bool, c *clock) []byte {
	var scratch [64]byte
	dst = appendEscaped(dst, clientAddr(scratch[:0], r.get(fRemote), truncateIP))
	dst = append(dst, " - - ["...)
	dst = append(dst, c.stamp(r.unixNano).clf...)
	dst = append(dst, "] \""...)
	dst = appendEscaped(dst, r.get(fMethod))
	dst = append(dst, ' ')
	dst = appendEscaped(dst, r.get(fURI))
	dst = append(dst, ' ')
	dst = appendEscaped(dst, r.get(fProto))
	dst = append(dst, "\" "...)
	dst = strconv.AppendUint(dst, uint64(r.status), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, r.bytes, 10)
	dst = appendQuoted(append(dst, ' '), r.get(fReferer))
	dst = appendQuoted(append(dst, ' '), r.get(fUserAgent))
	return append(dst, '\n')
}

// appendQuoted appends s quoted and escaped, or "-" when empty, as nginx writes header fields.
func appendQuoted(dst []byte, s string) []byte {
	if len(s) == 0 {
		return append(dst, `"-"`...)
	}
	dst = append(dst, '"')
	return append(appendEscaped(dst, s), '"')
}

// appendEscaped appends s with '"', '\\' and every byte outside printable ASCII as \xHH, as
// nginx's escape=default does: a line then never breaks, and no field can close its quotes.
// Runs of bytes that need no escape (jsonPlain's) are appended at once.
func appendEscaped[S []byte | string](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		i += plainPrefix(s[i:])
		if i == len(s) {
			break
		}
		c := s[i]
		dst = append(dst, s[start:i]...)
		dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// appendSeconds appends d in seconds with microsecond precision ("0.000123"): what a duration
// in a log needs, without the cost of the shortest float formatting.
func appendSeconds(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	us := int64(d / time.Microsecond)
	dst = strconv.AppendInt(dst, us/1e6, 10)
	var frac [7]byte
	frac[0] = '.'
	putDigits(frac[1:], uint64(us%1e6))
	return append(dst, frac[:]...)
}

// clientAddr appends to scratch the address of an "ip:port" remote address, truncated to /24
// or /48 when asked. A remote address that does not parse is appended as it is when not
// truncated, else as "-". Callers escape the result.
func clientAddr[S []byte | string](scratch []byte, remote S, truncate bool) []byte {
	if !truncate {
		if ip, ok := plainIPv4(remote); ok {
			return append(scratch, ip...)
		}
	}
	ap, err := netip.ParseAddrPort(string(remote))
	if err != nil {
		if truncate {
			return append(scratch, '-') // it cannot be truncated, so it is not logged
		}
		return append(scratch, remote...)
	}
	ip := ap.Addr().Unmap().WithZone("")
	if truncate {
		bits := 48
		if ip.Is4() {
			bits = 24
		}
		p, _ := ip.Prefix(bits) // cannot fail: bits fits either family
		ip = p.Addr()
	}
	return ip.AppendTo(scratch)
}

// plainIPv4 returns the address of "a.b.c.d:port", the common case, without parsing it: the
// part before the colon when it is only digits and dots. ok is false for anything else (IPv6,
// malformed), which is parsed.
func plainIPv4[S []byte | string](remote S) (ip S, ok bool) {
	colon := -1
	for i := 0; i < len(remote); i++ {
		switch c := remote[i]; {
		case c == ':':
			if colon >= 0 {
				return ip, false
			}
			colon = i
		case c == '.' || c >= '0' && c <= '9':
		default:
			return ip, false
		}
	}
	if colon <= 0 {
		return ip, false
	}
	return remote[:colon], true
}

// tlsName names a TLS version as Caddy and nginx log it ("1.3"), or "" for none. Versions
// without a name are formatted anew: a line with one allocates.
func tlsName(v uint16) string {
	switch v {
	case 0:
		return ""
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}
