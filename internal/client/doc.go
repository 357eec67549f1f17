// Package client joins a dt network for one command and leaves again: a short-lived node that
// dials the given peers, never listens, and keeps its data in a temporary directory removed at
// close (or a cache kept between runs). Its durability comes from the peers: a write is done once
// a peer acknowledged it (dt.Node.WaitReplicated).
//
// Beside the node, a Watch follows each dial and handshake, so that a command that cannot reach
// the network can say what happened to each peer, and stops as soon as no peer can succeed (a
// name that does not resolve, a refused handshake, a port that keeps refusing) instead of
// retrying until its timeout. Wording the failure for a person is the caller's job: the Watch
// reports each peer's state (Peer).
package client
