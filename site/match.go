package site

import "strings"

// MatchRule matches a site path against a rule pattern of _redirects or _headers (Netlify
// syntax): segments are compared literally, except that a segment ":name" matches any one
// non-empty segment (captured as params["name"]) and a final "*" matches the rest of the path,
// empty or not (captured as params["splat"]). A pattern ending in "/*" also matches the directory
// itself ("/blog/*" matches "/blog"). Matching is case-sensitive, like the paths it serves.
func MatchRule(pattern, path string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	if strings.HasSuffix(pattern, "*") {
		prefix := strings.TrimSuffix(pattern, "*")
		dir := strings.TrimSuffix(prefix, "/")
		if !strings.Contains(prefix, ":") {
			switch {
			case strings.HasPrefix(path, prefix):
				set("splat", path[len(prefix):])
				return params, true
			case dir != "" && path == dir:
				set("splat", "")
				return params, true
			}
			return nil, false
		}
		// Placeholders before the splat: match segment by segment, then the rest.
		pSegs := strings.Split(strings.TrimSuffix(prefix, "/"), "/")
		segs := strings.Split(path, "/")
		if len(segs) < len(pSegs) {
			return nil, false
		}
		for i, ps := range pSegs {
			if !matchSegment(ps, segs[i], set) {
				return nil, false
			}
		}
		set("splat", strings.Join(segs[len(pSegs):], "/"))
		return params, true
	}
	pSegs := strings.Split(pattern, "/")
	segs := strings.Split(path, "/")
	if len(pSegs) != len(segs) {
		// A trailing slash on either side is not significant.
		pSegs = trimEmptyTail(pSegs)
		segs = trimEmptyTail(segs)
		if len(pSegs) != len(segs) {
			return nil, false
		}
	}
	for i, ps := range pSegs {
		if !matchSegment(ps, segs[i], set) {
			return nil, false
		}
	}
	return params, true
}

func matchSegment(pattern, seg string, set func(k, v string)) bool {
	if strings.HasPrefix(pattern, ":") && len(pattern) > 1 {
		if seg == "" {
			return false
		}
		set(pattern[1:], seg)
		return true
	}
	return pattern == seg
}

func trimEmptyTail(segs []string) []string {
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		return segs[:len(segs)-1]
	}
	return segs
}

// ExpandRedirect fills a rule's target with the captured params: ":splat" and ":name" are
// replaced by their values. Unknown placeholders are left as they are.
func ExpandRedirect(to string, params map[string]string) string {
	if len(params) == 0 || !strings.Contains(to, ":") {
		return to
	}
	var b strings.Builder
	for i := 0; i < len(to); {
		if to[i] != ':' {
			b.WriteByte(to[i])
			i++
			continue
		}
		j := i + 1
		for j < len(to) && isNameByte(to[j]) {
			j++
		}
		if v, ok := params[to[i+1:j]]; ok && j > i+1 {
			b.WriteString(v)
		} else {
			b.WriteString(to[i:j])
		}
		i = j
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
