package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/dt-cdn/dt/dt"
)

func runAdd(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	fs := newFlagSet(env, "add", "dt add --keys DIR --peer ADDR [--timeout 30s] FILE",
		"Adds the JSON object in FILE (- for stdin) to the table: it opens a transient master node\n"+
			"(no listener, data in a temporary directory), links to --peer, writes the object, waits\n"+
			"until a peer holds it and prints its id (the hex SHA-256 of its canonical JSON).\n"+
			"Needs master.key in the keys directory.")
	f.register(fs)
	if err := f.parse(fs, args, 1, "FILE"); err != nil {
		return err
	}
	// Check the object before touching keys or the network.
	body, err := readObject(env, fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, &f, true)
	if err != nil {
		return err
	}
	defer t.close()
	id, err := t.n.AddObject(ctx, body)
	if err != nil {
		return t.explain(ctx, err)
	}
	if err := t.n.WaitReplicated(ctx, id, 1); err != nil {
		return t.explain(ctx, fmt.Errorf("object %s written but not confirmed by a peer: %w", id, err))
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, id)
	return nil
}

// readObject reads a JSON object from a file or stdin ("-") and returns its canonical form.
func readObject(env *Env, name string) (json.RawMessage, error) {
	var raw []byte
	var err error
	if name == "-" {
		raw, err = io.ReadAll(env.Stdin)
		name = "stdin"
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	body, err := dt.CanonicalJSON(json.RawMessage(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return body, nil
}

func runRemove(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	fs := newFlagSet(env, "remove", "dt remove --keys DIR --peer ADDR [--timeout 30s] ID",
		"Removes the object ID (as printed by dt add) from the table: it opens a transient master\n"+
			"node, links to --peer, learns the table, writes the removal, waits until a peer holds\n"+
			"it and prints the id. An id the table does not hold is an error.\n"+
			"Needs master.key in the keys directory.")
	f.register(fs)
	if err := f.parse(fs, args, 1, "ID"); err != nil {
		return err
	}
	id := fs.Arg(0)
	if b, err := hex.DecodeString(id); err != nil || len(b) != 32 || hex.EncodeToString(b) != id {
		return fs.usageErrorf("%q is not an object id (64 lowercase hex digits)", id)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, &f, true)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	if !t.n.Has(id) {
		return fmt.Errorf("%s: %w", id, dt.ErrNotFound)
	}
	if err := t.n.RemoveObject(ctx, id); err != nil {
		return t.explain(ctx, err)
	}
	if err := t.n.WaitReplicated(ctx, id, 1); err != nil {
		return t.explain(ctx, fmt.Errorf("removal of %s written but not confirmed by a peer: %w", id, err))
	}
	if err := t.close(); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, id)
	return nil
}
