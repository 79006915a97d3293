package sidecar

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ConnKind is the kind of a link in the connection table.
type ConnKind uint8

// Connection kinds.
const (
	KindAgent ConnKind = iota + 1
	KindPeer
	KindControlPlane
)

func (k ConnKind) String() string {
	switch k {
	case KindAgent:
		return "agent"
	case KindPeer:
		return "peer"
	case KindControlPlane:
		return "control_plane"
	}
	return "unknown"
}

// MarshalText makes ConnKind a JSON string.
func (k ConnKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ConnStatus is the status of a link.
type ConnStatus uint32

// Link statuses.
const (
	StatusConnecting ConnStatus = iota + 1
	StatusUp
	StatusDraining
	StatusDown
)

func (s ConnStatus) String() string {
	switch s {
	case StatusConnecting:
		return "connecting"
	case StatusUp:
		return "up"
	case StatusDraining:
		return "draining"
	case StatusDown:
		return "down"
	}
	return "unknown"
}

// MarshalText makes ConnStatus a JSON string.
func (s ConnStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var allKinds = []ConnKind{KindAgent, KindPeer, KindControlPlane}
var allStatuses = []ConnStatus{StatusConnecting, StatusUp, StatusDraining, StatusDown}

// ConnCounters are a link's traffic counters.
type ConnCounters struct {
	MsgsIn   uint64 `json:"msgs_in"`
	MsgsOut  uint64 `json:"msgs_out"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	Drops    uint64 `json:"drops"`
}

// ConnInfo is one row of the connection table dump.
type ConnInfo struct {
	ID            uint64     `json:"id"`
	Kind          ConnKind   `json:"kind"`
	Status        ConnStatus `json:"status"`
	RemoteAddress string     `json:"remote_address,omitempty"`
	NodeID        string     `json:"node_id,omitempty"`
	// PeerIdentity is the remote end's verified identity: a peer
	// sidecar's SPIFFE id (mutual TLS), empty on plaintext links.
	PeerIdentity    string       `json:"peer_identity,omitempty"`
	Direction       string       `json:"direction,omitempty"`
	ProtocolVersion uint32       `json:"protocol_version,omitempty"`
	MaxMessageBytes uint32       `json:"max_message_bytes,omitempty"`
	QueueSize       int          `json:"queue_size"`
	QueueDepth      int          `json:"queue_depth"`
	Subscriptions   int          `json:"subscriptions,omitempty"`
	Counters        ConnCounters `json:"counters"`
	Created         time.Time    `json:"created"`
	LastActivity    time.Time    `json:"last_activity,omitzero"`
}

// connEntry is the table's record of a link, embedded in agentConn and peer.
type connEntry struct {
	id      uint64
	kind    ConnKind
	created time.Time
	status  atomic.Uint32

	msgsIn, msgsOut, bytesIn, bytesOut, drops atomic.Uint64
	lastActivity                              atomic.Int64 // unix nanos

	mu        sync.Mutex // guards the descriptive fields below
	remote    string
	nodeID    string
	identity  string
	direction string
	version   uint32
	maxMsg    uint32

	queueCap   int
	queueDepth func() int
	subsCount  func() int
}

func (e *connEntry) Status() ConnStatus     { return ConnStatus(e.status.Load()) }
func (e *connEntry) setStatus(s ConnStatus) { e.status.Store(uint32(s)) }
func (e *connEntry) touch(now int64)        { e.lastActivity.Store(now) }
func (e *connEntry) countIn(size int, now int64) {
	e.msgsIn.Add(1)
	e.bytesIn.Add(uint64(size))
	e.lastActivity.Store(now)
}
func (e *connEntry) countOut(size int, now int64) {
	e.msgsOut.Add(1)
	e.bytesOut.Add(uint64(size))
	e.lastActivity.Store(now)
}

func (e *connEntry) info() ConnInfo {
	e.mu.Lock()
	ci := ConnInfo{
		ID: e.id, Kind: e.kind, Status: e.Status(), RemoteAddress: e.remote,
		NodeID: e.nodeID, PeerIdentity: e.identity, Direction: e.direction,
		ProtocolVersion: e.version, MaxMessageBytes: e.maxMsg, QueueSize: e.queueCap,
		Created: e.created,
	}
	e.mu.Unlock()
	if e.queueDepth != nil {
		ci.QueueDepth = e.queueDepth()
	}
	if e.subsCount != nil {
		ci.Subscriptions = e.subsCount()
	}
	ci.Counters = ConnCounters{
		MsgsIn: e.msgsIn.Load(), MsgsOut: e.msgsOut.Load(),
		BytesIn: e.bytesIn.Load(), BytesOut: e.bytesOut.Load(), Drops: e.drops.Load(),
	}
	if t := e.lastActivity.Load(); t != 0 {
		ci.LastActivity = time.Unix(0, t).UTC()
	}
	return ci
}

// ConnTable is the connection table: one entry per link.
type ConnTable struct {
	nextID atomic.Uint64
	mu     sync.RWMutex
	m      map[uint64]*connEntry
}

func newConnTable() *ConnTable { return &ConnTable{m: make(map[uint64]*connEntry)} }

// initEntry gives e a fresh id; it is not in the table yet.
func (t *ConnTable) initEntry(e *connEntry, kind ConnKind, status ConnStatus) {
	e.id = t.nextID.Add(1)
	e.kind = kind
	e.created = time.Now().UTC()
	e.setStatus(status)
}

func (t *ConnTable) add(e *connEntry) {
	t.mu.Lock()
	t.m[e.id] = e
	t.mu.Unlock()
}

func (t *ConnTable) remove(id uint64) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

func (t *ConnTable) entries() []*connEntry {
	t.mu.RLock()
	out := make([]*connEntry, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, e)
	}
	t.mu.RUnlock()
	return out
}

// Len returns the number of entries.
func (t *ConnTable) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Snapshot returns the table sorted by id.
func (t *ConnTable) Snapshot() []ConnInfo {
	es := t.entries()
	out := make([]ConnInfo, 0, len(es))
	for _, e := range es {
		out = append(out, e.info())
	}
	slices.SortFunc(out, func(a, b ConnInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// MarshalJSON dumps the table as a JSON array.
func (t *ConnTable) MarshalJSON() ([]byte, error) { return json.Marshal(t.Snapshot()) }
