package site

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Limits of the rules parsers. They bound the work a hostile or broken rules file can cause; real
// files stay far below them.
const (
	// MaxRuleLine bounds one line of a _redirects or _headers file, in bytes.
	MaxRuleLine = 16 << 10
	// MaxRules bounds the rules of one file (redirects, or header blocks) and of one manifest.
	MaxRules = 100_000
	// MaxHeaderValue bounds one header value, in bytes (a long Content-Security-Policy fits).
	MaxHeaderValue = 8 << 10
	// maxRuleErrors is how many errors a parser reports before it stops reading.
	maxRuleErrors = 10
)

// RuleError is an error in a _redirects or _headers file: the file's name as given to the
// parser, the 1-based line, and what is wrong. It wraps ErrInvalidRule.
type RuleError struct {
	File string
	Line int
	Msg  string
}

// Error formats the error as "file:line: msg", the form editors and compilers use.
func (e *RuleError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap returns ErrInvalidRule.
func (e *RuleError) Unwrap() error { return ErrInvalidRule }

// redirectStatuses are the statuses a redirect rule may give: rewrites (200), redirects
// (RFC 9110 §15.4) and the "not here" statuses served with the target's content (RFC 9110
// §15.5.5, §15.5.11; RFC 7725 for 451).
var redirectStatuses = map[int]bool{200: true, 301: true, 302: true, 303: true, 307: true, 308: true, 404: true, 410: true, 451: true}

// ParseRedirects parses a _redirects file in Netlify's syntax: one rule per line,
//
//	/from  /to  [status][!]
//
// with blank lines and lines starting with # ignored. The status is 301 unless given; "!" forces
// the rule even when a file exists at From. From is a site path with optional ":name" segments
// and a final "*"; To is a site path (which may use ":name" and ":splat") or an http(s) URL.
//
// Netlify features dt does not implement are refused rather than ignored, because ignoring them
// would change what the rule does: query matching ("/store id=:id /blog/:id"), conditions
// (Country=, Language=, Role=, Cookie=), proxying (a 200 to a URL) and domain-level rules. So are
// targets with other schemes (javascript:, data:), protocol-relative targets, and statuses other
// than 200, 301, 302, 303, 307, 308, 404, 410 and 451.
//
// Every error is a *RuleError naming name:line; up to ten are reported, joined with errors.Join.
func ParseRedirects(name string, r io.Reader) ([]Redirect, error) {
	var out []Redirect
	err := scanRules(name, r, func(line int, text string) string {
		if len(out) == MaxRules {
			return fmt.Sprintf("more than %d rules", MaxRules)
		}
		rd, why := parseRedirect(strings.Fields(text))
		if why == "" {
			out = append(out, rd)
		}
		return why
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func parseRedirect(fields []string) (Redirect, string) {
	if len(fields) < 2 {
		return Redirect{}, "a rule needs a path and a target: /from /to [status]"
	}
	rd := Redirect{From: fields[0], To: fields[1], Status: 301}
	if isCondition(rd.To) {
		return Redirect{}, fmt.Sprintf("query matching (%s) is not supported", rd.To)
	}
	rest := fields[2:]
	if len(rest) > 0 && !isCondition(rest[0]) {
		s := rest[0]
		rd.Force = strings.HasSuffix(s, "!")
		s = strings.TrimSuffix(s, "!")
		if len(s) != 3 || strings.Trim(s, "0123456789") != "" {
			return Redirect{}, fmt.Sprintf("status %q is not a number", rest[0])
		}
		rd.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if isCondition(rest[0]) {
			return Redirect{}, fmt.Sprintf("conditions (%s) are not supported", rest[0])
		}
		return Redirect{}, fmt.Sprintf("unexpected %q after the status", rest[0])
	}
	return rd, checkRedirect(rd)
}

// isCondition reports whether a field is Netlify's Key=value form (a query match before the
// target, a condition after the status), as opposed to a path or URL.
func isCondition(f string) bool {
	return strings.Contains(f, "=") && !strings.HasPrefix(f, "/") && !strings.Contains(f, "://")
}

// checkRedirect checks one redirect rule; it returns what is wrong, or "".
func checkRedirect(rd Redirect) string {
	captured, why := checkPattern(rd.From)
	if why != "" {
		return "from: " + why
	}
	kind, why := checkTarget(rd.To, captured)
	if why != "" {
		return "to: " + why
	}
	if !redirectStatuses[rd.Status] {
		return fmt.Sprintf("status %d: allowed are 200, 301, 302, 303, 307, 308, 404, 410, 451", rd.Status)
	}
	if kind == targetURL {
		switch rd.Status {
		case 200:
			return "a 200 rewrite to a URL (proxying) is not supported; use a 301, 302, 307 or 308 redirect"
		case 404, 410, 451:
			return fmt.Sprintf("status %d serves the target's content; the target must be a site path", rd.Status)
		}
	}
	return ""
}

// ParseHeaders parses a _headers file in Netlify's syntax: a path pattern on its own line (as
// Redirect.From), then its headers, one "Name: value" per line, usually indented:
//
//	/assets/*
//	  Cache-Control: public, max-age=31536000, immutable
//	  X-Frame-Options: DENY
//
// A line whose first non-blank character is "/" starts a block; blank lines and lines starting
// with # are ignored. The same name may appear twice in a block (each value is added). Names must
// be RFC 9110 §5.6.2 tokens and values RFC 9110 §5.5 field values (no CR, LF, NUL or other control
// characters), non-empty and at most MaxHeaderValue bytes. Headers that would corrupt the
// response framing or the connection are refused: Connection, Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade (RFC 9110 §7.6.1), Content-Length, Content-Encoding and
// Content-Range (the edge sets them from the content it serves).
//
// Every error is a *RuleError naming name:line; up to ten are reported, joined with errors.Join.
func ParseHeaders(name string, r io.Reader) ([]HeaderRule, error) {
	var out []HeaderRule
	blockLine := 0
	var errs []error
	err := scanRules(name, r, func(line int, text string) string {
		if strings.HasPrefix(text, "/") {
			if len(out) > 0 && len(out[len(out)-1].Values) == 0 {
				errs = append(errs, &RuleError{name, blockLine, "path has no headers under it"})
			}
			if len(out) == MaxRules {
				return fmt.Sprintf("more than %d rules", MaxRules)
			}
			if _, why := checkPattern(text); why != "" {
				return why
			}
			out = append(out, HeaderRule{Path: text})
			blockLine = line
			return ""
		}
		if strings.Contains(text, "://") {
			return "domain-level rules are not supported: a path must start with /"
		}
		if len(out) == 0 {
			return "header before any path"
		}
		k, v, ok := strings.Cut(text, ":")
		if !ok {
			return "expected Name: value"
		}
		v = strings.Trim(v, " \t")
		if why := checkHeader(k, v); why != "" {
			return why
		}
		rule := &out[len(out)-1]
		rule.Values = append(rule.Values, [2]string{k, v})
		return ""
	})
	if len(out) > 0 && len(out[len(out)-1].Values) == 0 {
		errs = append(errs, &RuleError{name, blockLine, "path has no headers under it"})
	}
	if err != nil || len(errs) > 0 {
		return nil, errors.Join(append([]error{err}, errs...)...)
	}
	return out, nil
}

// forbiddenHeaders are the header names a _headers file may not set (lower case).
var forbiddenHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true,
	"transfer-encoding": true, "upgrade": true, "content-length": true, "content-encoding": true,
	"content-range": true,
}

// checkHeader checks one header field; it returns what is wrong, or "".
func checkHeader(name, value string) string {
	if name == "" || !isToken(name) {
		return fmt.Sprintf("header name %q is not a token (RFC 9110 §5.6.2)", truncate(name))
	}
	if len(name) > 256 {
		return "header name longer than 256 bytes"
	}
	if forbiddenHeaders[strings.ToLower(name)] {
		return fmt.Sprintf("header %s may not be set by a site (the edge sets it)", name)
	}
	if value == "" {
		return fmt.Sprintf("header %s has an empty value", name)
	}
	if len(value) > MaxHeaderValue {
		return fmt.Sprintf("header %s: value longer than %d bytes", name, MaxHeaderValue)
	}
	if !utf8.ValidString(value) {
		return fmt.Sprintf("header %s: value is not valid UTF-8", name)
	}
	for i := 0; i < len(value); i++ {
		// RFC 9110 §5.5: field-value = *field-content; no CTL but HTAB. CR and LF here would
		// split the response (header injection).
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Sprintf("header %s: value contains control character %#02x", name, c)
		}
	}
	if value[0] == '\t' || value[len(value)-1] == '\t' || value[0] == ' ' || value[len(value)-1] == ' ' {
		return fmt.Sprintf("header %s: value has leading or trailing white space", name)
	}
	return ""
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isNameByte(c) || strings.IndexByte("!#$%&'*+.^`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// scanRules feeds each meaningful line (trimmed, not blank, not a comment) of a rules file to
// parse, and turns what parse reports into *RuleErrors. It stops after maxRuleErrors errors.
func scanRules(name string, r io.Reader, parse func(line int, text string) string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxRuleLine)
	var errs []error
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		var why string
		if !utf8.Valid(b) {
			why = "line is not valid UTF-8"
		} else if text := strings.TrimSpace(string(b)); text != "" && text[0] != '#' {
			why = parse(n, text)
		}
		if why != "" {
			errs = append(errs, &RuleError{name, n, why})
			if len(errs) == maxRuleErrors {
				return errors.Join(errs...)
			}
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		errs = append(errs, &RuleError{name, n + 1, fmt.Sprintf("line longer than %d bytes", MaxRuleLine)})
	case err != nil:
		errs = append(errs, fmt.Errorf("site: read %s: %w", name, err))
	}
	return errors.Join(errs...)
}
