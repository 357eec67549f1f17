package resolve

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/dt-cdn/dt/dt"
)

// Collector gathers the answers to one request. It is safe for concurrent use.
type Collector struct {
	req Request

	mu      sync.Mutex
	answers map[string]Answer // guarded by mu: by node id
	changed chan struct{}     // guarded by mu: closed and replaced on each new answer
}

// NewCollector returns a collector for the answers to req.
func NewCollector(req Request) *Collector {
	return &Collector{req: req, answers: map[string]Answer{}, changed: make(chan struct{})}
}

// HandleEvent takes one event of the asking node and keeps it when it is an answer to the
// request, signed by the node it names. A node's first answer counts; later ones are ignored.
func (c *Collector) HandleEvent(ev dt.Event) {
	if ev.Type != dt.EventMessageReceived {
		return
	}
	a, err := DecodeAnswer(ev.Object)
	if err != nil || a.ID != c.req.ID || a.To != c.req.From || a.Name != c.req.Name || a.QType != c.req.QType || a.Node != ev.From.String() {
		return
	}
	c.Add(a)
}

// Add keeps an answer obtained otherwise (the asking node's own lookup).
func (c *Collector) Add(a Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.answers[a.Node]; dup {
		return
	}
	c.answers[a.Node] = a
	close(c.changed)
	c.changed = make(chan struct{})
}

// Count returns the number of answers so far and a channel closed at the next one.
func (c *Collector) Count() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.answers), c.changed
}

// Answers returns the answers so far, by node id.
func (c *Collector) Answers() []Answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Answer, 0, len(c.answers))
	for _, a := range c.answers {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Answer) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// Group is the nodes that saw one same answer.
type Group struct {
	Rcode   string   `json:"rcode"`
	Records []string `json:"records"`
	Nodes   []string `json:"nodes"`
}

// Report compares the answers of several nodes.
type Report struct {
	// Groups are the distinct answers, the most widely seen first (ties by their first node id).
	Groups []Group `json:"groups"`
	// Failed are the nodes whose resolver gave no answer, with why.
	Failed map[string]string `json:"failed,omitempty"`
	// Agree is set when every node that got an answer got the same one.
	Agree bool `json:"agree"`
	// Majority is the answer more nodes saw than any other, or nil when no answer leads (a tie,
	// or no answer at all).
	Majority *Group `json:"majority,omitempty"`
	// Dissent are the nodes that saw something else than the majority (every node with an answer
	// when there is no majority), sorted: the nodes whose view of the DNS is suspect.
	Dissent []string `json:"dissent,omitempty"`
}

// Compare groups answers by what was seen: the response code and the records.
func Compare(answers []Answer) Report {
	r := Report{Failed: map[string]string{}}
	byKey := map[string]*Group{}
	for _, a := range answers {
		if a.Error != "" {
			r.Failed[a.Node] = a.Error
			continue
		}
		key := a.Rcode + "\n" + strings.Join(a.Records, "\n")
		g := byKey[key]
		if g == nil {
			g = &Group{Rcode: a.Rcode, Records: a.Records}
			byKey[key] = g
		}
		g.Nodes = append(g.Nodes, a.Node)
	}
	for _, g := range byKey {
		slices.Sort(g.Nodes)
		r.Groups = append(r.Groups, *g)
	}
	slices.SortFunc(r.Groups, func(a, b Group) int {
		if c := cmp.Compare(len(b.Nodes), len(a.Nodes)); c != 0 {
			return c
		}
		return cmp.Compare(a.Nodes[0], b.Nodes[0])
	})
	r.Agree = len(r.Groups) == 1
	if len(r.Groups) > 0 && (len(r.Groups) == 1 || len(r.Groups[0].Nodes) > len(r.Groups[1].Nodes)) {
		r.Majority = &r.Groups[0]
	}
	for _, g := range r.Groups {
		if r.Majority != nil && g.Rcode == r.Majority.Rcode && slices.Equal(g.Records, r.Majority.Records) {
			continue
		}
		r.Dissent = append(r.Dissent, g.Nodes...)
	}
	slices.Sort(r.Dissent)
	return r
}
