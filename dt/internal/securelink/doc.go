// Package securelink authenticates and encrypts the links between dt nodes.
//
// Every byte two nodes exchange goes through a [Conn], established by [Client] (the dialing
// side) or [Server] (the accepting side) over any net.Conn, usually TCP. A Conn is itself a
// net.Conn; dt runs a stream multiplexer on top of it.
//
// # Protocol
//
// The handshake is the Noise protocol Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s (noiseprotocol.org,
// revision 34), with these choices:
//
//   - The pre-shared key is the network key, 32 random bytes every node of a network holds
//     (Config.NetworkKey).
//   - Each node's Noise static key is X25519, derived with HKDF-SHA-256 from the seed of its
//     Ed25519 identity key (Config.Identity), so the Ed25519 key alone recreates the node.
//   - Each side sends an encrypted payload: a version byte, its Ed25519 public key, an Ed25519
//     signature over a domain-separation string and its Noise static public key, and an opaque
//     application hello of at most [MaxHelloSize] bytes (Config.Hello). The initiator sends it in
//     message 3; the responder in the first transport frame, after it has authenticated the
//     initiator.
//   - The Noise prologue is "dt-securelink/1", a NUL byte and Config.Prologue (the table id and
//     epoch), so nodes of other protocol versions or tables cannot link.
//   - Every message is a 2-byte big-endian length and that many bytes (Noise spec §13), at most
//     65535. A transport frame carries at most 65519 bytes of data and a 16-byte tag.
//   - Each direction's key is replaced with Noise's REKEY function (Noise spec §11.3) after
//     every GiB of ciphertext in that direction. Both ends count the same bytes, so no message
//     announces it.
//
// # Guarantees
//
// A Conn returned by Client or Server is authenticated in both directions:
//
//   - The peer holds the network key. The responder checks it when it decrypts message 3, whose
//     payload is the first thing encrypted with the key mixed in; the initiator when it decrypts
//     the responder's first transport frame. A guess of the network key can only be tested
//     online, one handshake per guess, against a node that counts failures.
//   - The peer holds the Ed25519 private key of Peer.PublicKey. Noise authenticates the peer's
//     static key (the es and se DH operations only succeed for its private key's holder), and the
//     peer's Ed25519 signature binds that static key to its Ed25519 identity. A payload copied
//     from another handshake is useless without the static private key it names.
//   - The peer agreed on the prologue: it is hashed into every key and tag of the handshake.
//   - Data is confidential and intact. ChaCha20-Poly1305 authenticates every frame under a
//     counter nonce that both ends advance in step, so a frame that is modified, replayed,
//     reordered or dropped fails decryption. Read then returns an error wrapping [ErrAuth],
//     closes the underlying connection and delivers nothing more. A stream cut inside a frame
//     gives [ErrMalformed] the same way.
//   - Forward secrecy: session keys come from ephemeral X25519 keys (ee), so stealing a node's
//     identity key or the network key later does not decrypt recorded traffic. Rekeying limits
//     what a session key taken from a running process exposes to the last GiB per direction.
//   - A node accepting connections reveals only its Noise static public key, which is not
//     linked to its Ed25519 identity, to a peer that has not proved it holds the network key.
//     Noise XX sends it in message 2 under keys any active initiator can compute.
//
// # Caveats
//
// The end of the stream is not authenticated: a connection cut between two frames reads as
// io.EOF. The layer above must frame its own orderly close. Anyone holding the network key can
// join the network under an identity of their own making; what a node may do once linked (for
// instance publish content) is decided above this package by the Ed25519 keys it pins.
//
// The initiator cannot tell a responder that rejected its network key or prologue from any
// other closed connection: an unauthenticated "wrong key" reply could be forged, so the
// responder only closes. Client reports this as [ErrHandshake]; the responder's Server returns
// [ErrAuth]. Only the accepting side can therefore count authentication failures.
//
// Rekeying happens by volume only, not by time: a link that carries little traffic keeps its
// keys until it is re-established. Nonces run out after 2^64-1 frames per direction, which no
// link reaches; Write would then fail rather than reuse a nonce.
package securelink
