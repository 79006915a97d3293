package e2ee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agwproject/agw/internal/identity"
)

// hub is an in-memory Transport between Managers: one ordered queue and
// worker per receiving node. It records every byte it carries and can drop
// messages.
type hub struct {
	mu      sync.Mutex
	cond    *sync.Cond
	nodes   map[string]*Manager
	queues  map[string][]hubMsg
	closed  bool
	wg      sync.WaitGroup
	record  bytes.Buffer
	dropFn  func(from, to string, e Envelope) bool
	handled int
}

type hubMsg struct {
	from string
	b    []byte
}

func newHub(t *testing.T) *hub {
	h := &hub{nodes: map[string]*Manager{}, queues: map[string][]hubMsg{}}
	h.cond = sync.NewCond(&h.mu)
	t.Cleanup(h.close)
	return h
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.cond.Broadcast()
	h.mu.Unlock()
	h.wg.Wait()
}

// endpoint is the Transport of one node.
type endpoint struct {
	h    *hub
	node string
}

func (e endpoint) Send(ctx context.Context, to string, msg []byte) error {
	return e.h.send(e.node, to, msg)
}

func (h *hub) send(from, to string, msg []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("hub closed")
	}
	if _, ok := h.nodes[to]; !ok {
		return fmt.Errorf("no node %s", to)
	}
	if h.dropFn != nil {
		var e Envelope
		if e.UnmarshalBinary(msg) == nil && h.dropFn(from, to, e) {
			return nil
		}
	}
	h.record.Write(msg)
	h.queues[to] = append(h.queues[to], hubMsg{from: from, b: slices.Clone(msg)})
	h.cond.Broadcast()
	return nil
}

// attach registers m and starts its worker.
func (h *hub) attach(m *Manager) {
	h.mu.Lock()
	h.nodes[m.node] = m
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			h.mu.Lock()
			for !h.closed && len(h.queues[m.node]) == 0 {
				h.cond.Wait()
			}
			if h.closed {
				h.mu.Unlock()
				return
			}
			msg := h.queues[m.node][0]
			h.queues[m.node] = h.queues[m.node][1:]
			cur := h.nodes[m.node]
			h.mu.Unlock()
			_ = cur.HandleHandshake(context.Background(), msg.from, msg.b)
			h.mu.Lock()
			h.handled++
			h.mu.Unlock()
		}
	}()
}

// replace swaps the Manager that receives for a node (restart).
func (h *hub) replace(m *Manager) {
	h.mu.Lock()
	h.nodes[m.node] = m
	h.mu.Unlock()
}

func (h *hub) recorded() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.record.Bytes())
}

// roster is a test Roster.
type roster struct {
	mu    sync.Mutex
	parts map[string][]string
	gone  map[string]bool
}

func newRoster() *roster { return &roster{parts: map[string][]string{}, gone: map[string]bool{}} }

func (r *roster) set(topic string, nodes ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts[topic] = nodes
}

func (r *roster) setGone(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone[node] = true
}

func (r *roster) Participants(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.parts[topic])
}

func (r *roster) Gone(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone[node]
}

// fixture builds Managers with identities from one demo CA.
type fixture struct {
	t      *testing.T
	ca     *identity.CA
	hub    *hub
	roster *roster
	cfg    Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := identity.NewCA("example.org")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RetryInterval = 20 * time.Millisecond
	cfg.JoinTimeout = 5 * time.Second
	cfg.EpochWait = 300 * time.Millisecond
	return &fixture{t: t, ca: ca, hub: newHub(t), roster: newRoster(), cfg: cfg}
}

func (f *fixture) source(ca *identity.CA, node string) *identity.Source {
	f.t.Helper()
	id := identity.MustParseID("spiffe://" + ca.TrustDomain() + "/ns/agents/sa/" + node)
	src, err := ca.MemorySource(id, time.Hour)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = src.Close() })
	return src
}

// manager starts a Manager (with Run) for node.
func (f *fixture) manager(node string, mod ...func(*Config)) *Manager {
	f.t.Helper()
	return f.managerWith(node, f.source(f.ca, node), mod...)
}

func (f *fixture) managerWith(node string, src *identity.Source, mod ...func(*Config)) *Manager {
	f.t.Helper()
	cfg := f.cfg
	for _, fn := range mod {
		fn(&cfg)
	}
	opts := []Option{WithRoster(f.roster)}
	if os.Getenv("E2EE_TEST_LOG") != "" {
		opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	m, err := New(cfg, node, src, endpoint{f.hub, node}, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.hub.mu.Lock()
	_, known := f.hub.nodes[node]
	f.hub.mu.Unlock()
	if known {
		f.hub.replace(m)
	} else {
		f.hub.attach(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); _ = m.Close(); <-done })
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func events(m *Manager, reason string) float64 {
	return testutil.ToFloat64(m.met.security.WithLabelValues(reason))
}

// groupOf returns the debug view of m's group named name.
func groupOf(m *Manager, name string) (GroupInfo, bool) {
	for _, g := range m.Groups() {
		if g.Name == name {
			return g, true
		}
	}
	return GroupInfo{}, false
}

func memberNodes(g GroupInfo) []string {
	var out []string
	for _, mi := range g.Members {
		out = append(out, mi.NodeID)
	}
	slices.Sort(out)
	return out
}

func newCA(td string) (*identity.CA, error) { return identity.NewCA(td) }

func dumpEvents(m *Manager) map[string]float64 {
	out := map[string]float64{}
	for _, r := range []string{EventDecrypt, EventReplay, EventOldEpoch, EventFutureEpoch, EventUnknownGroup, EventWrongSender, EventRoutingHeader, EventRemoved, EventForgedCommit, EventCredential, EventMalformed} {
		if v := events(m, r); v != 0 {
			out[r] = v
		}
	}
	return out
}
