package dt

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/dt-cdn/dt/dt/internal/hlc"
)

// Writing the table: only masters sign records; a master with peers first learns the network's
// state, so its records win over every record already written.

// AddObject adds an object (any value encoding/json accepts, or a json.RawMessage) to the table
// and returns its id, the hex SHA-256 of its canonical JSON. It returns once the object is stored
// on this node; it reaches peers as they sync. Only a master may add: elsewhere it returns
// ErrNotMaster and emits an error event, as the original does. A master with peers waits (bounded
// by ctx) until it has learnt the network's state from one of them, so its clock is ahead of every
// record already written.
func (n *Node) AddObject(ctx context.Context, object any) (string, error) {
	body, err := CanonicalJSON(object)
	if err != nil {
		n.emitError(err, "add_object", nil)
		return "", err
	}
	id := ObjectID(body)
	if err := n.Put(ctx, id, body); err != nil {
		return "", err
	}
	return id, nil
}

// RemoveObject removes the object with the given id. Only a master may remove.
func (n *Node) RemoveObject(ctx context.Context, id string) error {
	return n.Delete(ctx, id)
}

// Put writes body under key: the lower-level write under AddObject, for tables keyed by name.
func (n *Node) Put(ctx context.Context, key string, body []byte) error {
	if int64(len(body)) > n.cfg.MaxObjectSize {
		err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(body), ErrTooLarge, n.cfg.MaxObjectSize)
		n.emitError(err, "add_object", nil)
		return err
	}
	rec := &Record{Kind: KindPut, Key: key, Hash: sha256.Sum256(body), Size: uint64(len(body))}
	return n.write(ctx, rec, body, "add_object")
}

// Delete writes a tombstone for key. Deleting a key the table does not hold is not an error (the
// tombstone still wins over a put of it that may be in flight).
func (n *Node) Delete(ctx context.Context, key string) error {
	return n.write(ctx, &Record{Kind: KindDelete, Key: key}, nil, "remove_object")
}

func (n *Node) write(ctx context.Context, rec *Record, body []byte, origin string) error {
	return n.writeBatch(ctx, []*Record{rec}, [][]byte{body}, origin)
}

// writeBatch signs and commits records (with their bodies, nil for deletes). Records queued
// together commit together, in as few transactions as the applier's batch allows.
func (n *Node) writeBatch(ctx context.Context, recs []*Record, bodies [][]byte, origin string) error {
	if !n.cfg.Master {
		err := fmt.Errorf("%w (%s %s)", ErrNotMaster, origin, recs[0].Key)
		n.emitError(err, origin, bodies[0])
		return err
	}
	for i, rec := range recs {
		if len(rec.Key) == 0 || len(rec.Key) > MaxKeySize {
			err := fmt.Errorf("%w: key of %d bytes", ErrMalformed, len(rec.Key))
			n.emitError(err, origin, bodies[i])
			return err
		}
		if rec.Kind == KindPut && strings.HasPrefix(rec.Key, GrantKeyPrefix) {
			if _, err := CheckGrantRecord(rec.Key, bodies[i]); err != nil {
				n.emitError(err, origin, bodies[i])
				return err
			}
		}
	}
	select {
	case <-n.synced:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
	case <-n.ctx.Done():
		return ErrClosed
	}
	signer := n.cfg.Keys.Master
	if signer == nil {
		signer = n.cfg.Keys.Publisher
	}
	clocks := make([]hlc.Timestamp, len(recs))
	for i, rec := range recs {
		clocks[i] = n.clock.Now()
		if err := n.checkOwnGrant(rec, clocks[i]); err != nil {
			n.emitError(err, origin, bodies[i])
			return err
		}
	}
	done := make(chan applyResult, len(recs))
	for i, rec := range recs {
		rec.Table, rec.Epoch, rec.Writer = n.table, n.cfg.Epoch, n.id
		rec.Clock = uint64(clocks[i])
		rec.sign(signer)
		op := applyOp{rec: rec, id: rec.ID(), done: done}
		if rec.Kind == KindPut {
			if len(bodies[i]) <= n.cfg.InlineBodyMax {
				op.body = bodies[i]
			} else if err := n.store.blobs.PutBytes(rec.Hash, bodies[i]); err != nil {
				err = fmt.Errorf("dt: store object body: %w", err)
				n.emitError(err, origin, bodies[i])
				return err
			}
		}
		if err := n.submit(ctx, op); err != nil {
			return err
		}
	}
	var first error
	for range recs {
		select {
		case res := <-done:
			if res.err != nil && first == nil {
				first = res.err
				n.emitError(res.err, origin, nil)
			}
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
	return first
}

// PutMany writes several keyed bodies at once, committed in as few transactions as possible.
func (n *Node) PutMany(ctx context.Context, keys []string, bodies [][]byte) error {
	if len(keys) != len(bodies) {
		return fmt.Errorf("dt: PutMany: %d keys, %d bodies", len(keys), len(bodies))
	}
	if len(keys) == 0 {
		return nil
	}
	recs := make([]*Record, len(keys))
	for i, key := range keys {
		if int64(len(bodies[i])) > n.cfg.MaxObjectSize {
			err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(bodies[i]), ErrTooLarge, n.cfg.MaxObjectSize)
			n.emitError(err, "add_object", nil)
			return err
		}
		recs[i] = &Record{Kind: KindPut, Key: key, Hash: sha256.Sum256(bodies[i]), Size: uint64(len(bodies[i]))}
	}
	return n.writeBatch(ctx, recs, bodies, "add_object")
}

// DeleteMany writes tombstones for several keys at once.
func (n *Node) DeleteMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	recs := make([]*Record, len(keys))
	for i, key := range keys {
		recs[i] = &Record{Kind: KindDelete, Key: key}
	}
	return n.writeBatch(ctx, recs, make([][]byte, len(keys)), "remove_object")
}

// AddObjects adds several objects at once and returns their ids in order: the bulk form of
// AddObject, committed in as few transactions as possible.
func (n *Node) AddObjects(ctx context.Context, objects []any) ([]string, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	recs := make([]*Record, len(objects))
	bodies := make([][]byte, len(objects))
	ids := make([]string, len(objects))
	for i, object := range objects {
		body, err := CanonicalJSON(object)
		if err != nil {
			n.emitError(err, "add_object", nil)
			return nil, err
		}
		if int64(len(body)) > n.cfg.MaxObjectSize {
			err := fmt.Errorf("dt: object of %d bytes: %w (limit %d)", len(body), ErrTooLarge, n.cfg.MaxObjectSize)
			n.emitError(err, "add_object", nil)
			return nil, err
		}
		ids[i] = ObjectID(body)
		bodies[i] = body
		recs[i] = &Record{Kind: KindPut, Key: ids[i], Hash: sha256.Sum256(body), Size: uint64(len(body))}
	}
	if err := n.writeBatch(ctx, recs, bodies, "add_object"); err != nil {
		return nil, err
	}
	return ids, nil
}

// checkOwnGrant refuses at once a publisher's write that its grant, as this node holds it, does
// not cover; every node judges it again on arrival. A master writes anything.
func (n *Node) checkOwnGrant(rec *Record, clock hlc.Timestamp) error {
	if n.cfg.Keys.Master != nil {
		return nil
	}
	pub := n.cfg.Keys.Publisher.Public().(ed25519.PublicKey)
	if strings.HasPrefix(rec.Key, GrantKeyPrefix) {
		return fmt.Errorf("dt: %s %s: %w: %s is written by masters only", rec.Kind, rec.Key, ErrOutsideGrant, GrantKeyPrefix)
	}
	g, ok := n.grants.get(pub)
	if !ok {
		return fmt.Errorf("dt: %s %s: %w: the table holds no grant for publisher key %x", rec.Kind, rec.Key, ErrOutsideGrant, pub)
	}
	if err := g.Covers(rec.Key, rec.Kind, clock); err != nil {
		return fmt.Errorf("dt: %s %s: %w", rec.Kind, rec.Key, err)
	}
	return nil
}

// Grant writes a grant letting key write records under the scope's prefixes with their
// operations, from now on (not_before is this master's clock) with no end, and returns it. It
// replaces any grant key held, keeping its not_before, so that what the key wrote under it stays
// valid (within the new scope); after a revocation, the new grant covers again what the key
// signed meanwhile. Only a master may grant; it refuses a scope ParseGrant would
// refuse with ErrBadGrant.
func (n *Node) Grant(ctx context.Context, key ed25519.PublicKey, scope []GrantRule) (Grant, error) {
	if n.cfg.Keys.Master == nil {
		return Grant{}, fmt.Errorf("%w (grant)", ErrNotMaster)
	}
	if err := n.WaitSynced(ctx); err != nil {
		return Grant{}, err
	}
	g := Grant{Key: key, Scope: scope, NotBefore: n.clock.Now()}
	// A key granted before keeps the start of its window: every node drops the records a grant
	// change no longer covers, so a window starting now would take away all the key wrote, a
	// site's current pointer among them, each time a master ran dt grant for it again (to change
	// its scope, to re-run a provisioning script, or to trust it again after a revocation).
	if old, ok := n.grants.get(key); ok && len(old.Scope) > 0 {
		g.NotBefore = min(g.NotBefore, old.NotBefore)
	}
	body, err := g.Marshal()
	if err != nil {
		return Grant{}, err
	}
	if err := n.Put(ctx, GrantKey(key), body); err != nil {
		return Grant{}, err
	}
	return ParseGrant(body)
}

// Revoke closes key's grant at this master's clock: records the key stamped before stay valid,
// later ones are refused by every node (see GrantKeyPrefix). It returns the revoked grant, or an
// error wrapping ErrNotFound when the table holds no grant for key.
func (n *Node) Revoke(ctx context.Context, key ed25519.PublicKey) (Grant, error) {
	if n.cfg.Keys.Master == nil {
		return Grant{}, fmt.Errorf("%w (revoke)", ErrNotMaster)
	}
	if err := n.WaitSynced(ctx); err != nil {
		return Grant{}, err
	}
	g, ok := n.grants.get(key)
	if !ok || len(g.Scope) == 0 {
		return Grant{}, fmt.Errorf("dt: grant for %x: %w", key, ErrNotFound)
	}
	body, err := g.Revoked(n.clock.Now()).Marshal()
	if err != nil {
		return Grant{}, err
	}
	if err := n.Put(ctx, GrantKey(key), body); err != nil {
		return Grant{}, err
	}
	return ParseGrant(body)
}
