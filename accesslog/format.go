package accesslog

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendLine appends r's line in format f, newline included.
func appendLine(dst []byte, r *record, f Format, truncateIP bool) []byte {
	if f == Combined {
		return appendCombined(dst, r, truncateIP)
	}
	return appendJSON(dst, r, truncateIP)
}

// appendJSON appends r as one JSON object and a newline. Strings are escaped as RFC 8259 §7
// requires, with invalid UTF-8 replaced by U+FFFD so that every line parses.
func appendJSON(dst []byte, r *record, truncateIP bool) []byte {
	dst = append(dst, `{"time":"`...)
	dst = time.Unix(0, r.unixNano).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	for _, f := range []struct {
		name string
		f    field
	}{{"site", fSite}, {"host", fHost}, {"method", fMethod}, {"path", fURI}} {
		dst = appendJSONField(dst, f.name, r.get(f.f))
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendUint(dst, uint64(r.status), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, r.bytes, 10)
	dst = append(dst, `,"duration":`...)
	dst = appendSeconds(dst, time.Duration(r.duration))
	dst = appendJSONField(dst, "protocol", r.get(fProto))
	dst = appendJSONString(append(dst, `,"tls":`...), tlsName(r.tlsVersion))
	dst = appendJSONField(dst, "encoding", r.get(fEncoding))
	dst = appendJSONField(dst, "referer", r.get(fReferer))
	dst = appendJSONField(dst, "user_agent", r.get(fUserAgent))
	var scratch [64]byte
	dst = appendJSONString(append(dst, `,"client":`...), clientAddr(scratch[:], r.get(fRemote), truncateIP))
	return append(dst, "}\n"...)
}

func appendJSONField[S []byte | string](dst []byte, name string, v S) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Runs of bytes that need no escape (nearly every
// byte of a request's fields) are appended at once rather than byte by byte.
func appendJSONString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
			if r != utf8.RuneError || n != 1 {
				i += n // valid: part of the run
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
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendCombined appends r in the Combined Log Format and a newline.
func appendCombined(dst []byte, r *record, truncateIP bool) []byte {
	var scratch [64]byte
	dst = appendEscaped(dst, clientAddr(scratch[:], r.get(fRemote), truncateIP))
	dst = append(dst, " - - ["...)
	dst = time.Unix(0, r.unixNano).UTC().AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
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
func appendQuoted(dst, s []byte) []byte {
	if len(s) == 0 {
		return append(dst, `"-"`...)
	}
	dst = append(dst, '"')
	return append(appendEscaped(dst, s), '"')
}

// appendEscaped appends s with '"', '\\' and every byte outside printable ASCII as \xHH, as
// nginx's escape=default does: a line then never breaks, and no field can close its quotes.
func appendEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// appendSeconds appends d in seconds with microsecond precision ("0.000123"): what a duration
// in a log needs, without the cost of the shortest float formatting.
func appendSeconds(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	us := int64(d / time.Microsecond)
	dst = strconv.AppendInt(dst, us/1e6, 10)
	frac := us % 1e6
	dst = append(dst, '.')
	for div := int64(1e5); div > 0; div /= 10 {
		dst = append(dst, byte('0'+frac/div%10))
	}
	return dst
}

// clientAddr returns the address of an "ip:port" remote address, truncated to /24 or /48 when
// asked, in scratch or aliasing remote. A remote address that does not parse is returned as it
// is when not truncated, else as "-". Callers escape the result.
func clientAddr(scratch, remote []byte, truncate bool) []byte {
	if !truncate {
		if ip, ok := plainIPv4(remote); ok {
			return ip
		}
	}
	ap, err := netip.ParseAddrPort(string(remote))
	if err != nil {
		if truncate {
			return append(scratch[:0], '-') // it cannot be truncated, so it is not logged
		}
		return remote
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
	return ip.AppendTo(scratch[:0])
}

// plainIPv4 returns the address of "a.b.c.d:port", the common case, without parsing it: the
// part before the colon when it is only digits and dots. ok is false for anything else (IPv6,
// malformed), which is parsed.
func plainIPv4(remote []byte) (ip []byte, ok bool) {
	colon := -1
	for i, c := range remote {
		switch {
		case c == ':':
			if colon >= 0 {
				return nil, false
			}
			colon = i
		case c == '.' || c >= '0' && c <= '9':
		default:
			return nil, false
		}
	}
	if colon <= 0 {
		return nil, false
	}
	return remote[:colon], true
}

// tlsName names a TLS version as Caddy and nginx log it ("1.3"), or "" for none.
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
