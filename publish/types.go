package publish

import (
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// contentTypes maps a lower-case extension to its media type. It comes first, before the
// system's tables (mime.TypeByExtension reads /etc/mime.types and the like), so that the same
// site gets the same types, and so the same deploy id, on every machine. Types follow the IANA
// registry; JavaScript is text/javascript (RFC 9239).
var contentTypes = map[string]string{
	// Documents and code.
	".html": "text/html", ".htm": "text/html", ".xhtml": "application/xhtml+xml",
	".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript", ".cjs": "text/javascript",
	".json": "application/json", ".map": "application/json", ".jsonld": "application/ld+json",
	".geojson": "application/geo+json", ".ndjson": "application/x-ndjson",
	".webmanifest": "application/manifest+json", ".xml": "application/xml", ".xsl": "application/xslt+xml",
	".rss": "application/rss+xml", ".atom": "application/atom+xml", ".txt": "text/plain",
	".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv", ".tsv": "text/tab-separated-values",
	".ics": "text/calendar", ".vtt": "text/vtt", ".srt": "application/x-subrip",
	".yaml": "application/yaml", ".yml": "application/yaml", ".toml": "application/toml",
	".wasm": "application/wasm", ".pdf": "application/pdf", ".epub": "application/epub+zip",
	".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
	// Images.
	".png": "image/png", ".apng": "image/apng", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".svg": "image/svg+xml",
	".ico": "image/vnd.microsoft.icon", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
	".heic": "image/heic", ".jxl": "image/jxl",
	// Fonts.
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".ttc": "font/collection", ".eot": "application/vnd.ms-fontobject",
	// Audio and video.
	".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg",
	".oga": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac",
	".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
	".mov": "video/quicktime",
	// 3D models.
	".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
	// Archives and binaries.
	".zip": "application/zip", ".gz": "application/gzip", ".tgz": "application/gzip",
	".zst": "application/zstd", ".tar": "application/x-tar", ".7z": "application/x-7z-compressed",
	".bin": "application/octet-stream", ".exe": "application/octet-stream", ".dmg": "application/octet-stream",
}

// compressibleTypes are the media types, besides text/* and the +json and +xml suffixes, worth
// precompressing. Formats that are compressed already (images, woff and woff2, audio, video,
// archives, PDF) are not.
var compressibleTypes = map[string]bool{
	"text/javascript": true, "application/javascript": true, "application/json": true,
	"application/xml": true, "application/x-ndjson": true, "application/yaml": true,
	"application/toml": true, "application/wasm": true, "application/x-subrip": true,
	"application/vnd.apple.mpegurl": true, "image/svg+xml": true, "image/vnd.microsoft.icon": true,
	"image/x-icon": true, "image/bmp": true, "font/ttf": true, "font/otf": true,
	"font/collection": true, "application/vnd.ms-fontobject": true,
}

// contentType returns the Content-Type of a file from its name and first bytes: the built-in
// table, then the system's, then sniffing (the WHATWG algorithm of http.DetectContentType). Text
// types get "; charset=utf-8" when the first bytes are UTF-8 (a page in another encoding keeps
// the charset its <meta> declares, which a header would override).
func contentType(name string, head []byte) string {
	ext := strings.ToLower(path.Ext(name))
	t, ok := contentTypes[ext]
	if !ok && ext != "" {
		t = mime.TypeByExtension(ext)
	}
	if t == "" {
		return http.DetectContentType(head)
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return http.DetectContentType(head)
	}
	if strings.HasPrefix(mt, "text/") {
		delete(params, "charset")
		if validUTF8Prefix(head) {
			params["charset"] = "utf-8"
		}
	}
	return mime.FormatMediaType(mt, params)
}

// validUTF8Prefix reports whether b is valid UTF-8, allowing a rune cut off at its end.
func validUTF8Prefix(b []byte) bool {
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return true
		}
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

// compressible reports whether a Content-Type is worth precompressing.
func compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") ||
		compressibleTypes[mt]
}
