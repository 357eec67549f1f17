package site

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPathLen bounds a site path and a rule pattern, in bytes. Real sites stay far below it; the
// bound keeps a hostile manifest from making every lookup expensive.
const MaxPathLen = 1024

// MaxTargetLen bounds a redirect target, in bytes (a path with a query, or a URL).
const MaxTargetLen = 2048

// CheckPath reports whether p may name a file in a manifest: an absolute, clean, slash-separated
// path in valid UTF-8 of at most MaxPathLen bytes, with no empty, "." or ".." segment, no ".git"
// segment (in any case), no trailing slash, no backslash and no control character (C0, DEL or
// C1). Names starting with a dot are allowed here: the publisher decides whether hidden files are
// published (package publish refuses them unless asked). The error wraps ErrInvalidPath and says
// which rule p breaks.
//
// These rules keep a site path meaningful on every system that handles it: a backslash is a
// separator on Windows and to some browsers, control characters break logs and headers, and ".."
// has no meaning in a manifest that is never a filesystem. CheckPath does not decode percent
// escapes: site paths are stored decoded.
func CheckPath(p string) error {
	if why := pathProblem(p); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidPath, truncate(p), why)
	}
	return nil
}

func pathProblem(p string) string {
	if why := textProblem(p, MaxPathLen); why != "" {
		return why
	}
	if !strings.HasPrefix(p, "/") {
		return "not absolute (must start with /)"
	}
	if p == "/" || strings.HasSuffix(p, "/") {
		return "ends with / (a file path names a file, not a directory)"
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch {
		case seg == "":
			return "has an empty segment (//)"
		case seg == "." || seg == "..":
			return "has a dot segment (. or ..)"
		case strings.EqualFold(seg, ".git"):
			return "has a .git segment (repository data is never site content)"
		}
	}
	if path.Clean(p) != p {
		// Unreachable after the checks above; kept so that "clean" is enforced by definition.
		return "not clean"
	}
	return ""
}

// textProblem checks what every path, pattern and target shares: a length bound, UTF-8, and no
// control characters or backslashes.
func textProblem(s string, maxLen int) string {
	if s == "" {
		return "empty"
	}
	if len(s) > maxLen {
		return fmt.Sprintf("longer than %d bytes", maxLen)
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("contains control character %U", r)
		}
		if r == '\\' {
			return "contains a backslash"
		}
	}
	return ""
}

// truncate shortens s for an error message, so that a hostile input does not make a huge one.
func truncate(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// checkPattern checks a rule pattern (Redirect.From, HeaderRule.Path) and returns the names it
// captures (placeholders, and "splat" for a final "*"). A pattern is an absolute path of literal
// segments, ":name" segments and an optional final "*" segment; it may end with a slash. Query
// strings, fragments and percent escapes are refused: patterns match the decoded path, and
// Netlify's query matching is not supported.
func checkPattern(p string) (map[string]bool, string) {
	if why := textProblem(p, MaxPathLen); why != "" {
		return nil, why
	}
	if !strings.HasPrefix(p, "/") {
		return nil, "pattern must be a site path starting with / (domain-level rules are not supported)"
	}
	if i := strings.IndexAny(p, "?#%"); i >= 0 {
		return nil, fmt.Sprintf("pattern contains %q: write the decoded path, without query or fragment", p[i])
	}
	if strings.IndexFunc(p, unicode.IsSpace) >= 0 {
		return nil, "pattern contains white space"
	}
	names := map[string]bool{}
	segs := strings.Split(p[1:], "/")
	sample := make([]string, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		sample[i] = seg
		switch {
		case seg == "" && last:
		case seg == "":
			return nil, "pattern has an empty segment (//)"
		case seg == "." || seg == "..":
			return nil, "pattern has a dot segment (. or ..)"
		case seg == "*" && last:
			names["splat"] = true
			sample[i] = "x"
		case strings.Contains(seg, "*"):
			return nil, "* may only be the whole last segment (/*)"
		case strings.HasPrefix(seg, ":"):
			name := seg[1:]
			if name == "" || strings.IndexFunc(name, func(r rune) bool { return r > 127 || !isNameByte(byte(r)) }) >= 0 {
				return nil, fmt.Sprintf("placeholder %q: a name is letters, digits, _ and -", seg)
			}
			if name == "splat" {
				return nil, "placeholder :splat is reserved for the final *"
			}
			if names[name] {
				return nil, fmt.Sprintf("placeholder %q appears twice", seg)
			}
			names[name] = true
			sample[i] = "x"
		}
	}
	// The pattern must match a path built from it, capturing every name: this holds MatchRule,
	// which the edge uses, to what the pattern says.
	params, ok := MatchRule(p, "/"+strings.Join(sample, "/"))
	if !ok || len(params) != len(names) {
		return nil, "pattern does not match as written"
	}
	return names, ""
}

// targetKind says what a redirect target is.
type targetKind int

const (
	targetPath targetKind = iota // a site path, with an optional query and fragment
	targetURL                    // an absolute http or https URL: an external redirect
)

// checkTarget checks a redirect target: a site path ("/new/:splat?x=1") or an absolute http(s)
// URL. Other schemes (javascript:, data:, ftp:) are refused: a redirect to them runs script or
// content in the site's name. So are protocol-relative targets ("//host/"), which look like paths
// but leave the site: write https://host/ for an external redirect.
func checkTarget(to string, captured map[string]bool) (targetKind, string) {
	if why := textProblem(to, MaxTargetLen); why != "" {
		return 0, why
	}
	if strings.IndexFunc(to, unicode.IsSpace) >= 0 {
		return 0, "target contains white space"
	}
	if strings.Contains(to, ":splat") && !captured["splat"] {
		return 0, "target uses :splat but the pattern does not end in *"
	}
	if strings.HasPrefix(to, "/") {
		if strings.HasPrefix(to, "//") {
			return 0, "target starts with // (a protocol-relative URL); write https://host/ for an external redirect"
		}
		p, _, _ := strings.Cut(to, "?")
		p, _, _ = strings.Cut(p, "#")
		for seg := range strings.SplitSeq(p[1:], "/") {
			if seg == "." || seg == ".." {
				return 0, "target has a dot segment (. or ..)"
			}
		}
		return targetPath, ""
	}
	scheme, rest, ok := strings.Cut(to, "://")
	if !ok {
		return 0, "target must be a site path (/…) or an http(s) URL"
	}
	if s := strings.ToLower(scheme); s != "http" && s != "https" {
		return 0, fmt.Sprintf("target scheme %q: only http and https are allowed", scheme)
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	host, _, _ = strings.Cut(host, "#")
	switch {
	case host == "":
		return 0, "target URL has no host"
	case strings.Contains(host, "@"):
		return 0, "target URL has user information (user@host)"
	}
	return targetURL, ""
}
