package dt

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dt-cdn/dt/dt/internal/ipguard"
)

// ErrNotBlocked is returned by Unblock and UnblockAll when no block in force matched.
var ErrNotBlocked = errors.New("dt: not blocked")

// Block is a block of the node's address guard: connections from Prefix are refused at accept,
// before any cryptography, until Until.
type Block struct {
	// Prefix is the blocked IPv4 address (/32), IPv6 /64, or IPv6 /48.
	Prefix netip.Prefix `json:"prefix"`
	// Reason is auth_failures (failed handshakes, or a peer that broke the protocol after its
	// handshake), connections (too many connections that never authenticated) or subnet (too
	// many /64s of the /48 blocked).
	Reason string `json:"reason"`
	// Since is when the block began.
	Since time.Time `json:"since"`
	// Until is when it ends.
	Until time.Time `json:"until"`
	// Count is how many times the prefix has been blocked recently, this block included: the
	// first block lasts an hour, the second six, later ones a day.
	Count int `json:"count"`
}

// Blocks returns the address blocks in force, sorted by prefix.
func (n *Node) Blocks() []Block { return blocksOf(n.guard.Blocks()) }

// Unblock lifts every block within p (a single address means its IPv4 address or IPv6 /64) and
// forgets their history, so that a later block is a first one again. The change is saved in
// the database before Unblock returns. It returns the blocks lifted, or an error wrapping
// ErrNotBlocked if none was in force.
func (n *Node) Unblock(p netip.Prefix) ([]Block, error) { return unblock(n.guard.Unblock(p)) }

// UnblockAll lifts every block, as Unblock does.
func (n *Node) UnblockAll() ([]Block, error) { return unblock(n.guard.UnblockAll()) }

// StoredBlocks are the address blocks in the data directory of a node that is not running.
type StoredBlocks struct {
	db    *bolt.DB
	guard *ipguard.Guard
}

// OpenStoredBlocks opens the blocks stored in dataDir. The database is locked while a node
// runs on it: then OpenStoredBlocks fails after a second with an error wrapping bbolt's
// ErrTimeout, and the running node's Unblock is the way. With readOnly, Unblock fails. Close
// the result to release the database.
func OpenStoredBlocks(dataDir string, readOnly bool) (*StoredBlocks, error) {
	path := filepath.Join(dataDir, "dt.db")
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dt: %s holds no node database (%s): %w", dataDir, filepath.Base(path), err)
		}
		return nil, fmt.Errorf("dt: open database: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  time.Second,
		ReadOnly: readOnly,
		// The node's own options: opened for writing, a database whose free list is not synced
		// would otherwise be rewritten with one.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("dt: open database: %w", err)
	}
	// Every stored block is shown and may be lifted, loopback included, whatever the node's
	// own configuration spares.
	g, err := ipguard.New(ipguard.Config{
		Store:         guardState{db: db},
		Logger:        slog.New(slog.DiscardHandler),
		BlockLoopback: true,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dt: address guard: %w", err)
	}
	return &StoredBlocks{db: db, guard: g}, nil
}

// Blocks returns the stored blocks in force, sorted by prefix.
func (s *StoredBlocks) Blocks() []Block { return blocksOf(s.guard.Blocks()) }

// Unblock lifts the stored blocks within p, as Node.Unblock does.
func (s *StoredBlocks) Unblock(p netip.Prefix) ([]Block, error) { return unblock(s.guard.Unblock(p)) }

// UnblockAll lifts every stored block.
func (s *StoredBlocks) UnblockAll() ([]Block, error) { return unblock(s.guard.UnblockAll()) }

// Close releases the database.
func (s *StoredBlocks) Close() error {
	s.guard.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("dt: close database: %w", err)
	}
	return nil
}

func blocksOf(bs []ipguard.Block) []Block {
	out := make([]Block, 0, len(bs))
	for _, b := range bs {
		out = append(out, Block{Prefix: b.Prefix, Reason: b.Reason, Since: b.Since, Until: b.Until, Count: b.Count})
	}
	return out
}

// unblock converts the guard's result, its ErrNotBlocked to the package's.
func unblock(lifted []ipguard.Block, err error) ([]Block, error) {
	if errors.Is(err, ipguard.ErrNotBlocked) {
		return nil, ErrNotBlocked
	}
	if err != nil {
		return blocksOf(lifted), fmt.Errorf("dt: unblock: %w", err)
	}
	return blocksOf(lifted), nil
}
