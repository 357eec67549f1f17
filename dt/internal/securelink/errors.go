package securelink

import "errors"

// Errors returned by [Client], [Server] and [Conn]. Check them with errors.Is; returned errors wrap
// them with the step that failed and, where there is one, the underlying cause. Callers that count
// strikes against a remote address (the address guard, package ipguard) should count ErrAuth,
// ErrMalformed and ErrTimeout from [Server]; ErrHandshake is usually a network fault.
var (
	// ErrAuth is returned when the peer could not be authenticated or a message failed its
	// integrity check: a different network key, a different prologue (another table, epoch or
	// protocol version), an identity signature that does not match the peer's Noise static key,
	// or any frame that was modified, replayed, reordered or dropped in transit. A Conn that
	// returns it from Read has closed the underlying connection and delivers no further data.
	ErrAuth = errors.New("securelink: authentication failed")
	// ErrMalformed is returned when the peer sent bytes that do not follow the protocol: a
	// handshake message of the wrong size, an undecodable handshake payload, a hello over
	// MaxHelloSize, a frame shorter than its authentication tag, or a stream that ends in the
	// middle of a frame. A Conn that returns it from Read has closed the underlying connection.
	ErrMalformed = errors.New("securelink: malformed message")
	// ErrTimeout is returned by Client and Server when the handshake did not finish within
	// Config.HandshakeTimeout or before the context's deadline. The error also wraps what
	// ended the wait: os.ErrDeadlineExceeded from the connection, or
	// context.DeadlineExceeded when the context's deadline came first.
	ErrTimeout = errors.New("securelink: handshake timed out")
	// ErrHandshake is returned by Client and Server when the connection failed or was closed by
	// the peer during the handshake. The initiator sees this error, not ErrAuth, when the
	// responder rejects its network key: the responder can only tell it so by closing the
	// connection, since an unauthenticated "wrong key" reply could be forged by anyone.
	ErrHandshake = errors.New("securelink: connection lost during handshake")
	// ErrConfig is returned by Client and Server, before any byte is sent, when the Config is
	// invalid: an Identity that is not an Ed25519 private key, an all-zero NetworkKey, a Hello
	// over MaxHelloSize or a negative HandshakeTimeout.
	ErrConfig = errors.New("securelink: invalid config")
)
