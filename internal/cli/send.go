package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dt-cdn/dt/dt"
)

func runSend(ctx context.Context, args []string, env *Env) error {
	var f clientFlags
	fs := newFlagSet(env, "send", "dt send --keys DIR --peer ADDR [--timeout 30s] JSON",
		"Sends the JSON value as a message to every node online: it opens a transient plain node,\n"+
			"waits for a first sync with --peer, sends, and closes once the message is written to\n"+
			"the link.\n"+
			"Nodes receive it as a message_received event; nodes offline now never do.")
	f.register(fs)
	if err := f.parse(fs, args, 1, "JSON"); err != nil {
		return err
	}
	msg, err := dt.CanonicalJSON(json.RawMessage(fs.Arg(0)))
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	t, ctx, err := openTransient(ctx, env, &f, false)
	if err != nil {
		return err
	}
	defer t.close()
	// Wait for the first sync with the peer, not just a link: a node closed while its peer is
	// still streaming the table to it resets the connection (unread data at close makes TCP send
	// an RST), and the peer then drops the message still in its receive buffer.
	if err := t.n.WaitSynced(ctx); err != nil {
		return t.explain(ctx, err)
	}
	if err := t.n.SendMessage(ctx, json.RawMessage(msg)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	// Close drains the message queue of every link before it returns.
	return t.close()
}
