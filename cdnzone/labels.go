package cdnzone

import "strings"

// derivedPrefix starts every label derived from a node id.
const derivedPrefix = "e-"

// DerivedLabel returns the label derived from an edge's node id (hex): "e-" and its first
// DeployPrefixLen hex digits. It never changes for a node, whatever its Name.
func DerivedLabel(nodeID string) string {
	return derivedPrefix + strings.ToLower(nodeID[:min(len(nodeID), DeployPrefixLen)])
}

// isDerived reports whether l has the form of a derived label, which a Name may not take.
func isDerived(l string) bool {
	rest, ok := strings.CutPrefix(l, derivedPrefix)
	return ok && isDeployPrefix(rest)
}

// NameLabel returns the label an edge's heartbeat Name gives it, lower-cased, and false when
// the Name is empty, not a DNS label, contains "--" or has the derived form.
func NameLabel(name string) (string, bool) {
	l := strings.ToLower(name)
	if !isPart(l) || isDerived(l) {
		return "", false
	}
	return l, true
}

// Edge is what Labels needs of an edge.
type Edge struct {
	Node string // node id, hex
	Name string // from its heartbeat; may be empty
}

// Labels is the edges' labels at one moment. It is not modified once built.
type Labels struct {
	byNode  map[string]string // node -> label
	byLabel map[string]string // label (and every derived label) -> node
	shared  map[string][]string
}

// NewLabels assigns labels to edges (see the package documentation): each its Name's label
// when no other edge has it, else its derived label. Every derived label names its edge too.
func NewLabels(edges []Edge) *Labels {
	groups := map[string][]string{} // Name label -> nodes
	for _, e := range edges {
		if nl, ok := NameLabel(e.Name); ok {
			groups[nl] = append(groups[nl], e.Node)
		}
	}
	l := &Labels{byNode: map[string]string{}, byLabel: map[string]string{}, shared: map[string][]string{}}
	for _, e := range edges {
		d := DerivedLabel(e.Node)
		l.byLabel[d], l.byNode[e.Node] = e.Node, d
	}
	for nl, nodes := range groups {
		if len(nodes) > 1 {
			l.shared[nl] = nodes
			continue
		}
		l.byLabel[nl], l.byNode[nodes[0]] = nodes[0], nl
	}
	return l
}

// Label returns the label of the edge node, and false for an edge Labels was not built with.
func (l *Labels) Label(node string) (string, bool) {
	s, ok := l.byNode[node]
	return s, ok
}

// Node returns the edge a label names (its Name's label or its derived label).
func (l *Labels) Node(label string) (string, bool) {
	n, ok := l.byLabel[label]
	return n, ok
}

// Shared returns the Name labels that more than one edge has, with those edges' node ids:
// none of them is answered by that label, only by their derived ones.
func (l *Labels) Shared() map[string][]string { return l.shared }
