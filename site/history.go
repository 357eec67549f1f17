package site

import (
	"encoding/json"
	"fmt"
	"strings"
)

// MaxHistory is the most deploys a History lists. It bounds the object every publish to a site
// rewrites and every collection reads (65 bytes a deploy: about 64 KiB at the limit); a site
// keeps far fewer deploys (publish.NetworkOptions.Keep), and older entries are dropped first.
const MaxHistory = 1000

// historyKeySuffix ends the key of a site's History: "site/<name>/deploys".
const historyKeySuffix = "/deploys"

// History is the object under HistoryKey(name): the deploys published to the site, newest
// first, so that the site's kept deploys, its rollback target and collection are per site while
// deploys stay content-addressed and shared. Its JSON, as Marshal writes it:
//
//	{"v":1,"deploys":["<64 hex>","<64 hex>"]}
//
// Only sites other than DefaultSite have one: the deploys of DefaultSite are those no History
// lists, as on a network of the previous release, which wrote none. A History may list a deploy
// the table no longer holds (collected) or does not hold yet (its publisher writes the History
// before the manifest, so that no collection takes a new deploy for the default site's); readers
// skip those. Edges do not read it.
type History struct {
	V       int        `json:"v"`
	Deploys []DeployID `json:"deploys"`
}

// HistoryKey returns the table key of a site's History, "site/<name>/deploys", and "" for
// DefaultSite, which has none.
func HistoryKey(name string) string {
	if name == DefaultSite {
		return ""
	}
	return currentKeyPrefix + name + historyKeySuffix
}

// ParseHistoryKey returns the site whose History key is, and false for any other key.
func ParseHistoryKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, currentKeyPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, historyKeySuffix)
	if !ok || name == DefaultSite || CheckSiteName(name) != nil {
		return "", false
	}
	return name, true
}

// Marshal returns the History's JSON. It refuses (ErrInvalidHistory) a History that
// ParseHistory would refuse.
func (h History) Marshal() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	if h.Deploys == nil {
		h.Deploys = []DeployID{}
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	return b, nil
}

// ParseHistory decodes a History from untrusted bytes. Unknown fields, another version, more
// than MaxHistory deploys, a deploy listed twice and an object over the size MaxHistory deploys
// take are refused with ErrInvalidHistory.
func ParseHistory(b []byte) (History, error) {
	if len(b) > maxHistoryBytes {
		return History{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidHistory, len(b), maxHistoryBytes)
	}
	var h History
	if err := strictUnmarshal(b, &h); err != nil {
		return History{}, fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	if err := h.validate(); err != nil {
		return History{}, err
	}
	return h, nil
}

// maxHistoryBytes is the size of a History of MaxHistory deploys, with room for white space.
var maxHistoryBytes = len(`{"v":1,"deploys":[]}`) + MaxHistory*(2*len(DeployID{})+3) + 1024

func (h History) validate() error {
	if h.V != RecordVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidHistory, h.V, RecordVersion)
	}
	if len(h.Deploys) > MaxHistory {
		return fmt.Errorf("%w: %d deploys, at most %d", ErrInvalidHistory, len(h.Deploys), MaxHistory)
	}
	seen := make(map[DeployID]bool, len(h.Deploys))
	for _, id := range h.Deploys {
		if seen[id] || id.IsZero() {
			return fmt.Errorf("%w: deploy %s listed twice or zero", ErrInvalidHistory, id.Short())
		}
		seen[id] = true
	}
	return nil
}

// Push returns the History with id first, then the deploys of h that keep reports true for (all
// of them when keep is nil), without id listed twice, cut at MaxHistory. It does not modify h.
func (h History) Push(id DeployID, keep func(DeployID) bool) History {
	out := History{V: RecordVersion, Deploys: []DeployID{id}}
	for _, d := range h.Deploys {
		if d != id && len(out.Deploys) < MaxHistory && (keep == nil || keep(d)) {
			out.Deploys = append(out.Deploys, d)
		}
	}
	return out
}
