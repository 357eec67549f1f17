package edgeset

// CompareCandidates is compareCandidates, for the external tests' check of the order.
var CompareCandidates = compareCandidates
