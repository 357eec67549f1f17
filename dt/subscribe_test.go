package dt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dt-cdn/dt/dt/internal/ipguard"
	"github.com/dt-cdn/dt/internal/testkit/promtest"
)

// recorder is an event handler that keeps what it got and can be held: while held, HandleEvent
// blocks, as a slow consumer does.
type recorder struct {
	mu     sync.Mutex
	events []Event
	hold   chan struct{} // HandleEvent waits for it to close; nil: never waits
	in     chan struct{} // closed at the first event
	once   sync.Once
}

func newRecorder(held bool) *recorder {
	r := &recorder{in: make(chan struct{})}
	if held {
		r.hold = make(chan struct{})
	}
	return r
}

func (r *recorder) HandleEvent(ev Event) {
	r.once.Do(func() { close(r.in) })
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) release() { close(r.hold) }

func (r *recorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// count returns how many events of typ it got.
func (r *recorder) count(typ EventType) int {
	n := 0
	for _, ev := range r.got() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// bigBody returns a body of size bytes over InlineBodyMax, different for each i.
func bigBody(i, size int) []byte {
	b := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
	copy(b, fmt.Sprintf("%08d", i))
	return b
}

func TestSubscribeListsThenFollows(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	m := startNode(t, "m", testKeys(t), "", asMaster())
	large := bigBody(1, 100<<10)
	if err := m.PutMany(ctx, []string{"small", "large"}, [][]byte{[]byte(`"s"`), large}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder(false)
	sub, err := m.Subscribe(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "later", []byte(`"l"`)); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "large"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if n := len(r.got()); n != 5 {
			return fmt.Errorf("%d events, want 5", n)
		}
		return nil
	})
	got := r.got()
	if got[0].Type != EventStarted {
		t.Fatalf("first event %v, want started", got[0].Type)
	}
	listed := map[string][]byte{got[1].Key: got[1].Object, got[2].Key: got[2].Object}
	if got[1].Type != EventObjectAdded || got[2].Type != EventObjectAdded || string(listed["small"]) != `"s"` || !bytes.Equal(listed["large"], large) {
		t.Fatalf("listing: %v %s, %v %s (%d bytes)", got[1].Type, got[1].Key, got[2].Type, got[2].Key, len(got[2].Object))
	}
	if got[3].Type != EventObjectAdded || got[3].Key != "later" {
		t.Fatalf("event 3: %v %s, want the later put", got[3].Type, got[3].Key)
	}
	if got[4].Type != EventObjectRemoved || got[4].Key != "large" || !bytes.Equal(got[4].Object, large) {
		t.Fatalf("event 4: %v %s (%d bytes), want the removal of large with its body", got[4].Type, got[4].Key, len(got[4].Object))
	}
	sub.Close()
	sub.Close() // twice is fine
	if err := m.Put(ctx, "after", []byte(`"a"`)); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReplicated(ctx, "after", 0); err != nil {
		t.Fatal(err)
	}
	if n := len(r.got()); n != 5 {
		t.Fatalf("%d events after Close, want 5", n)
	}
}

func TestConfigEventsInOrder(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	keys := testKeys(t)
	dir := t.TempDir()
	first := startNode(t, "first run", keys, dir, asMaster())
	if err := first.Put(ctx, "held", []byte(`"h"`)); err != nil {
		t.Fatal(err)
	}
	first.stop()

	var mu sync.Mutex
	var calls []string
	handler := func(name string) EventHandler {
		return EventHandlerFunc(func(ev Event) {
			mu.Lock()
			calls = append(calls, name+" "+ev.Type.String()+" "+ev.Key)
			mu.Unlock()
		})
	}
	n := startNode(t, "second run", keys, dir, asMaster(), func(c *Config) {
		c.Events = []EventHandler{handler("a"), handler("b")}
	})
	if err := n.Put(ctx, "new", []byte(`"n"`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"a started ", "b started ", "a object_added held", "b object_added held", "a object_added new", "b object_added new"}
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !reflect.DeepEqual(calls, want) {
			return fmt.Errorf("calls %q, want %q", calls, want)
		}
		return nil
	})
}

// A consumer that is behind still gets an add and a remove of a large object with the body,
// though the body left the blob store's references before the events were delivered; the blob
// is deleted once they were.
func TestLateDeliveryKeepsBodies(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	m := startNode(t, "m", testKeys(t), "", asMaster())
	r := newRecorder(true)
	sub, err := m.Subscribe(r)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	<-r.in // held on EventStarted
	gone, replaced, replacement := bigBody(1, 200<<10), bigBody(2, 200<<10), bigBody(3, 200<<10)
	if err := m.PutMany(ctx, []string{"gone", "replaced"}, [][]byte{gone, replaced}); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "replaced", replacement); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{gone, replaced} {
		if h := hashOf(b); !m.store.hasBlob(h) {
			t.Fatalf("blob %x deleted while an event still needs it", h[:6])
		}
	}
	r.release()
	waitFor(t, 10*time.Second, func() error {
		if n := len(r.got()); n != 6 {
			return fmt.Errorf("%d events, want 6", n)
		}
		return nil
	})
	want := []struct {
		typ  EventType
		key  string
		body []byte
	}{
		{EventStarted, "", nil},
		{EventObjectAdded, "gone", gone},
		{EventObjectAdded, "replaced", replaced},
		{EventObjectRemoved, "gone", gone},
		{EventObjectRemoved, "replaced", replaced},
		{EventObjectAdded, "replaced", replacement},
	}
	for i, ev := range r.got() {
		if ev.Type != want[i].typ || ev.Key != want[i].key || !bytes.Equal(ev.Object, want[i].body) {
			t.Errorf("event %d: %v %q (%d bytes), want %v %q (%d bytes)", i, ev.Type, ev.Key, len(ev.Object), want[i].typ, want[i].key, len(want[i].body))
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for _, b := range [][]byte{gone, replaced} {
			if h := hashOf(b); m.store.hasBlob(h) {
				return fmt.Errorf("blob %x still stored after its events were delivered", h[:6])
			}
		}
		if n := m.pins.orphaned(); n != 0 {
			return fmt.Errorf("%d blobs kept for events", n)
		}
		return nil
	})
	if !m.store.hasBlob(hashOf(replacement)) {
		t.Fatal("the current body's blob is gone")
	}
}

// A subscriber that is behind loses errors (and messages) beyond EventBuffer, counted, and no
// object event.
func TestEventBufferDropsOnlyMessagesAndErrors(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	reg := prometheus.NewRegistry()
	cfg := LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Master, cfg.NoSync = testKeys(t), t.TempDir(), true, true
	cfg.EventBuffer, cfg.Registerer = 8, reg
	m, err := Open(cfg) // without startNode's reader, whose drops would count too
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := newRecorder(true)
	sub, err := m.Subscribe(r)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	<-r.in // held on EventStarted, with nothing else queued
	for range 50 {
		if err := m.Put(ctx, "", []byte(`"no key"`)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("put without key: %v", err)
		}
	}
	for i := range 20 {
		if err := m.Put(ctx, fmt.Sprint("k", i), bigBody(i, 20<<10)); err != nil {
			t.Fatal(err)
		}
	}
	r.release()
	waitFor(t, 10*time.Second, func() error {
		if n := r.count(EventObjectAdded); n != 20 {
			return fmt.Errorf("%d objects delivered, want 20", n)
		}
		return nil
	})
	if n := r.count(EventError); n != 8 {
		t.Errorf("%d errors delivered, want the 8 of EventBuffer", n)
	}
	if n := promtest.Sum(t, reg, "dt_events_dropped_total", "type=error"); n != 42 {
		t.Errorf("dt_events_dropped_total{type=error} = %v, want 42", n)
	}
}

// A node holding many large objects starts without reading them into memory: a subscriber that
// has not taken a single event yet holds their hashes, not their bodies.
func TestStartHeapBounded(t *testing.T) {
	const objects, size = 100, 512 << 10 // 50 MiB of bodies
	ctx := ctxTimeout(t, 60*time.Second)
	keys := testKeys(t)
	dir := t.TempDir()
	cfg := LocalConfig()
	cfg.Keys, cfg.DataDir, cfg.Master, cfg.NoSync = keys, dir, true, true
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range objects {
		if err := n.Put(ctx, fmt.Sprint("big/", i), bigBody(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	before := heapInUse()
	r := newRecorder(true)
	cfg.Events = []EventHandler{r}
	n, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	<-r.in
	waitFor(t, 10*time.Second, func() error {
		n.pins.mu.Lock()
		defer n.pins.mu.Unlock()
		if len(n.pins.count) != objects {
			return fmt.Errorf("%d bodies queued, want %d", len(n.pins.count), objects)
		}
		return nil
	})
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew %d KiB with %d objects of %d KiB listed (%d MiB of bodies)", grown>>10, objects, size>>10, objects*size>>20)
	if grown > objects*size/8 {
		t.Errorf("heap grew %d MiB listing %d MiB of bodies: bodies were read into the queue", grown>>20, objects*size>>20)
	}
	r.release()
	waitFor(t, 30*time.Second, func() error {
		if got := r.count(EventObjectAdded); got != objects {
			return fmt.Errorf("%d objects delivered, want %d", got, objects)
		}
		return nil
	})
	for _, ev := range r.got()[1:] {
		var i int
		if _, err := fmt.Sscanf(ev.Key, "big/%d", &i); err != nil || !bytes.Equal(ev.Object, bigBody(i, size)) {
			t.Fatalf("%s: %d bytes, not its body", ev.Key, len(ev.Object))
		}
	}
}

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

func TestSubscribeAfterClose(t *testing.T) {
	n := startNode(t, "n", testKeys(t), "")
	n.stop()
	if _, err := n.Subscribe(EventHandlerFunc(func(Event) {})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	select {
	case _, ok := <-n.Events():
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events not closed after Close")
	}
}

// Every GuardConfig setting reaches the address guard.
func TestGuardConfigConverts(t *testing.T) {
	var g GuardConfig
	v := reflect.ValueOf(&g).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(7 + i))
		case reflect.Float64:
			f.SetFloat(float64(7 + i))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("field %s of kind %v: extend this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	ic := g.ipguardConfig(nil, nil, nil, nil)
	iv := reflect.ValueOf(ic)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		got := iv.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("ipguard.Config has no field %s", name)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), v.Field(i).Interface()) {
			t.Errorf("%s: ipguard gets %v, want %v", name, got.Interface(), v.Field(i).Interface())
		}
	}
	// Every ipguard setting is offered, but those the node supplies itself.
	supplied := map[string]bool{"Store": true, "Logger": true, "Registerer": true, "Now": true}
	for i := range iv.NumField() {
		name := reflect.TypeOf(ipguard.Config{}).Field(i).Name
		if _, ok := v.Type().FieldByName(name); !ok && !supplied[name] {
			t.Errorf("GuardConfig lacks ipguard's %s", name)
		}
	}
}

// A subscription closed before the applier listed the table to it holds no body.
func TestSubscriptionClosedAtOnceHoldsNothing(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	m := startNode(t, "m", testKeys(t), "", asMaster())
	if err := m.Put(ctx, "large", bigBody(1, 100<<10)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		sub, err := m.Subscribe(EventHandlerFunc(func(Event) {}))
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
	if err := m.Delete(ctx, "large"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		m.pins.mu.Lock()
		pinned := len(m.pins.count)
		m.pins.mu.Unlock()
		if pinned != 0 || m.pins.orphaned() != 0 {
			return fmt.Errorf("%d bodies pinned, %d kept for events", pinned, m.pins.orphaned())
		}
		if m.store.hasBlob(hashOf(bigBody(1, 100<<10))) {
			return fmt.Errorf("the removed body is still stored")
		}
		return nil
	})
}
