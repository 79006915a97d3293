package e2ee

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
)

// TransportFunc is a Transport made of a function.
type TransportFunc func(ctx context.Context, node string, msg []byte) error

// Send calls f.
func (f TransportFunc) Send(ctx context.Context, node string, msg []byte) error {
	return f(ctx, node, msg)
}

// BindTransport sets the transport when New was given none: the sidecar
// node calls it (sidecar.WithPeerCrypter).
func (m *Manager) BindTransport(send func(ctx context.Context, node string, msg []byte) error) {
	m.trMu.Lock()
	defer m.trMu.Unlock()
	m.tr = TransportFunc(send)
}

// BindAddresses gives the Manager the sidecar's peer addresses: lookup
// returns the address of a node ("" if unknown), learn records one that a
// handshake carried. An invitation to a committer carries the committer's
// address, since the invited sidecar may have no route to it (the sidecar
// node calls this, sidecar.WithPeerCrypter).
func (m *Manager) BindAddresses(lookup func(node string) string, learn func(node, addr string)) {
	m.trMu.Lock()
	defer m.trMu.Unlock()
	m.addrOf, m.learnAddr = lookup, learn
}

// peerAddress is the sidecar's address for node, "" if unknown.
func (m *Manager) peerAddress(node string) string {
	m.trMu.Lock()
	f := m.addrOf
	m.trMu.Unlock()
	if f == nil {
		return ""
	}
	return f(node)
}

// learnAddress passes an address for node that a handshake carried.
func (m *Manager) learnAddress(node, addr string) {
	m.trMu.Lock()
	f := m.learnAddr
	m.trMu.Unlock()
	if f != nil && addr != "" {
		f(node, addr)
	}
}

func (m *Manager) transport() Transport {
	m.trMu.Lock()
	defer m.trMu.Unlock()
	return m.tr
}

// Transport carries handshake envelopes between the Managers of sidecars.
// Send must deliver msg to the Manager of node (its HandleHandshake, with
// this node as from), in order per pair of nodes; it may return before
// delivery. The integrator implements it on the fabric (topics under
// TopicPrefix) and authenticates the sending node (peer mTLS).
type Transport interface {
	Send(ctx context.Context, node string, msg []byte) error
}

// Roster tells a Manager about the sidecars of a channel.
type Roster interface {
	// Participants returns the node ids that publish or subscribe to topic
	// as far as this sidecar knows (its own id may appear).
	Participants(topic string) []string
	// Gone reports whether node's lease ended: its channel memberships are
	// removed by the committer (or, for the committer itself, by its
	// successor).
	Gone(node string) bool
}

// AddressRoster is a Roster that also knows the peer addresses of the
// nodes it has seen (RouteRoster: from their routes). A handshake to a node
// without a link or a known address goes to that address.
type AddressRoster interface {
	Roster
	// Address returns node's address, "" if unknown.
	Address(node string) string
}

// Errors.
var (
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("e2ee: manager closed")
	// ErrRefused: a message was refused (a security event); the wrapped
	// error says why.
	ErrRefused = errors.New("e2ee: message refused")
	// ErrNotMember: this sidecar is not (yet) a member of the group.
	ErrNotMember = errors.New("e2ee: not a member of the group")
)

// Manager holds this sidecar's MLS groups. It is safe for concurrent use.
type Manager struct {
	cfg  Config
	node string
	src  *identity.Source
	trMu sync.Mutex
	tr   Transport // nil until BindTransport when New got none
	// addrOf, learnAddr: see BindAddresses (nil without a sidecar node).
	addrOf    func(node string) string
	learnAddr func(node, addr string)
	roster    Roster
	log       *slog.Logger
	met       *metrics
	now       func() time.Time
	suite     suite.ID
	stateKey  []byte

	mu      sync.Mutex
	groups  map[string]*group // by MLS group id
	byPeer  map[string]*group
	byTopic map[string]*group
	pendP2P map[string]*joinReq // by peer (this node is the higher id)
	pendCh  map[string]*joinReq // by topic
	want    map[string]bool     // channels this sidecar is in
	// retired: groups replaced by a newer one of the same name (a renewed
	// session, a merged channel), kept for JoinTimeout to open messages
	// that were sealed in them before the peer learnt of the new group.
	retired map[string]retiredGroup
	subGen  map[string]uint64 // local subscription changes, by topic
	changed chan struct{}     // closed and replaced on every change
	closed  bool
	// isClosed mirrors closed for code that holds a group's lock.
	isClosed atomic.Bool
	// saveMu orders state saves (read side) before Close (write side).
	saveMu sync.RWMutex

	async sync.WaitGroup // TopicAdded/TopicRemoved work

	runMu   sync.Mutex
	running bool
	done    chan struct{}
}

// joinReq is a KeyPackage sent and waiting for its Welcome.
type joinReq struct {
	kpb     *mls.KeyPackageBundle
	started time.Time
	gen     uint64 // identity generation of the KeyPackage
	// idle: participants that answered they neither hold nor join the
	// channel (KindNoGroup).
	idle map[string]bool
	// target is the committer a member named (KindInvite), if any.
	target string
}

// New returns a Manager for node nodeID with the identity of src, sending
// handshakes over tr (nil: set later with BindTransport). Call Run to rotate keys and follow identity changes,
// and Close when done.
func New(cfg Config, nodeID string, src *identity.Source, tr Transport, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nodeID == "" || len(nodeID) > MaxNameLen {
		return nil, errors.New("e2ee: node id must be 1..1024 bytes")
	}
	if src == nil {
		return nil, errors.New("e2ee: an identity source is required")
	}
	o := options{logger: slog.New(slog.DiscardHandler), registerer: prometheus.NewRegistry(), roster: noRoster{}, now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	m := &Manager{
		cfg: cfg, node: nodeID, src: src, tr: tr, roster: o.roster, log: o.logger.With("node", nodeID), now: o.now,
		suite:  suite.ID(cfg.Suite),
		groups: map[string]*group{}, byPeer: map[string]*group{}, byTopic: map[string]*group{},
		pendP2P: map[string]*joinReq{}, pendCh: map[string]*joinReq{}, want: map[string]bool{}, subGen: map[string]uint64{},
		changed: make(chan struct{}), done: make(chan struct{}),
	}
	if cfg.StateDir != "" {
		m.stateKey, _ = cfg.stateKey()
		if err := m.loadState(); err != nil {
			return nil, err
		}
	}
	met, err := newMetrics(o.registerer, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.groups))
	})
	if err != nil {
		return nil, fmt.Errorf("e2ee: metrics: %w", err)
	}
	m.met = met
	return m, nil
}

type noRoster struct{}

func (noRoster) Participants(string) []string { return nil }
func (noRoster) Gone(string) bool             { return false }

// NodeID returns this sidecar's node id.
func (m *Manager) NodeID() string { return m.node }

// notify wakes every waiter; call with m.mu held.
func (m *Manager) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Run rotates keys, resends pending joins, invites channel participants,
// hands over channels whose committer is gone and follows identity
// changes, until ctx is done or Close is called.
func (m *Manager) Run(ctx context.Context) error {
	m.runMu.Lock()
	if m.running {
		m.runMu.Unlock()
		return errors.New("e2ee: Run already active")
	}
	m.running = true
	m.runMu.Unlock()
	events, unsub := m.src.Subscribe()
	defer unsub()
	m.freshenRestored(ctx)
	t := time.NewTicker(m.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.done:
			return nil
		case ev, ok := <-events:
			if ok {
				m.identityChanged(ctx, ev)
			}
		case <-t.C:
			m.tick(ctx)
		}
	}
}

// Close stops Run and makes every later call fail with ErrClosed. Group
// state was saved at each epoch change.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		m.isClosed.Store(true)
		close(m.done)
		m.notify()
	}
	m.mu.Unlock()
	m.async.Wait()
	// Wait for state saves in progress; later ones see isClosed.
	m.saveMu.Lock()
	m.saveMu.Unlock()
	return nil
}

// send encodes and sends an envelope, logging failures.
func (m *Manager) send(ctx context.Context, node string, e Envelope) {
	b, err := e.MarshalBinary()
	if err != nil {
		m.log.Error("mls handshake not encodable", "kind", e.Kind, "err", err)
		return
	}
	tr := m.transport()
	if tr == nil {
		m.log.Warn("mls handshake not sent: no transport bound", "to", node, "kind", e.Kind)
		return
	}
	if m.peerAddress(node) == "" {
		// A member this sidecar has no link or address for (two sidecars
		// that only subscribe never link by themselves): its routed
		// address, if the roster knows one.
		if ar, ok := m.roster.(AddressRoster); ok {
			m.learnAddress(node, ar.Address(node))
		}
	}
	sctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout)
	defer cancel()
	if err := tr.Send(sctx, node, b); err != nil {
		m.log.Warn("mls handshake not sent", "to", node, "kind", e.Kind, "name", e.Name, "err", err)
	}
}

// security counts and logs a refused message or credential.
func (m *Manager) security(reason, from, name string, err error) {
	if m.met != nil {
		m.met.security.WithLabelValues(reason).Inc()
	}
	m.log.Warn("mls message refused", "security_event", reason, "from", from, "group", name, "err", err)
}

// waitChange waits until the next change, ctx or a timeout.
func (m *Manager) waitChange(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return ErrClosed
	}
}

// install records a new group (replacing an older one of the same name)
// and saves it; call with m.mu held.
func (m *Manager) install(gr *group) {
	var old *group
	switch gr.kind {
	case kindP2P:
		old = m.byPeer[gr.name]
		m.byPeer[gr.name] = gr
		delete(m.pendP2P, gr.name)
	case kindChannel:
		old = m.byTopic[gr.name]
		m.byTopic[gr.name] = gr
		delete(m.pendCh, gr.name)
	}
	if old != nil && old != gr {
		delete(m.groups, old.gid)
		m.removeState(old.gid)
		if m.retired == nil {
			m.retired = map[string]retiredGroup{}
		}
		m.retired[old.gid] = retiredGroup{gr: old, until: time.Now().Add(m.cfg.JoinTimeout)}
	}
	delete(m.retired, gr.gid)
	m.groups[gr.gid] = gr
	m.notify()
}

type retiredGroup struct {
	gr    *group
	until time.Time
}

// openable returns the group of gid for Open: a current group, or a
// retired one not yet expired; call with m.mu held.
func (m *Manager) openable(gid string) *group {
	if gr := m.groups[gid]; gr != nil {
		return gr
	}
	r, ok := m.retired[gid]
	if !ok {
		return nil
	}
	if time.Now().After(r.until) {
		delete(m.retired, gid)
		return nil
	}
	return r.gr
}

// pruneRetired forgets expired retired groups; call with m.mu held.
func (m *Manager) pruneRetired(now time.Time) {
	for gid, r := range m.retired {
		if now.After(r.until) {
			delete(m.retired, gid)
		}
	}
}

// drop forgets a group; call with m.mu held.
func (m *Manager) drop(gr *group) {
	if m.groups[gr.gid] != gr {
		return
	}
	delete(m.groups, gr.gid)
	switch gr.kind {
	case kindP2P:
		if m.byPeer[gr.name] == gr {
			delete(m.byPeer, gr.name)
		}
	case kindChannel:
		if m.byTopic[gr.name] == gr {
			delete(m.byTopic, gr.name)
		}
	}
	m.removeState(gr.gid)
	m.notify()
}

// newJoinReq makes a KeyPackage with this sidecar's current identity.
func (m *Manager) newJoinReq() (*joinReq, error) {
	id, err := m.currentIdentity()
	if err != nil {
		return nil, err
	}
	kpb, err := mls.GenerateKeyPackage(m.suite, id.cred, m.leafOptions(id)...)
	if err != nil {
		return nil, err
	}
	return &joinReq{kpb: kpb, started: m.now(), gen: id.gen}, nil
}

// newMLSGroup creates a one-member group with this sidecar's identity.
func (m *Manager) newMLSGroup() (*mls.Group, error) {
	id, err := m.currentIdentity()
	if err != nil {
		return nil, err
	}
	return mls.NewGroup(m.suite, id.cred, m.leafOptions(id)...)
}
