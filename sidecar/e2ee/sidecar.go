package e2ee

import (
	"context"
	"sync"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// TopicAdded joins the channel of a topic the local agent subscribed to (a
// sidecar.SubscriptionSink; it does not block).
func (m *Manager) TopicAdded(topic string) {
	m.mu.Lock()
	m.subGen[topic]++
	m.mu.Unlock()
	if !m.goAsync(func(ctx context.Context) {
		if err := m.JoinChannel(ctx, topic); err != nil {
			m.log.Warn("mls channel not joined", "group", topic, "err", err)
		}
	}) {
		return
	}
}

// TopicRemoved leaves the channel of a topic the local agent no longer
// subscribes to, after LeaveGrace unless it subscribes again (a
// sidecar.SubscriptionSink; it does not block). A sidecar that shuts down
// within the grace keeps the group (and its saved state).
func (m *Manager) TopicRemoved(topic string) {
	m.mu.Lock()
	m.subGen[topic]++
	gen := m.subGen[topic]
	m.mu.Unlock()
	m.goAsync(func(ctx context.Context) {
		t := time.NewTimer(m.cfg.LeaveGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		m.mu.Lock()
		same := m.subGen[topic] == gen
		if same {
			delete(m.subGen, topic)
		}
		m.mu.Unlock()
		if same {
			m.LeaveChannel(ctx, topic)
		}
	})
}

// goAsync runs f in a goroutine that Close waits for.
func (m *Manager) goAsync(f func(ctx context.Context)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.async.Add(1)
	go func() {
		defer m.async.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-m.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		f(ctx)
	}()
	return true
}

// RouteRoster is a Roster over the node's routes (sidecar.RouteSource's
// Endpoints): the participants of a topic are its routed nodes with active
// entries. A node is gone once its lease has been withdrawn: its entries
// turned PENDING_WITHDRAWAL (its control plane stream ended, the grace
// period runs) and then disappeared (the grace period ran out). A node that
// comes back within the grace period (a restart, with its MLS state) stays
// a member; one that is back later rejoins.
type RouteRoster struct {
	Endpoints func(topic string) []*agpv1.RouteEndpoint
	// Watch, when set, declares interest in topic's routes
	// (sidecar.RouteSource.Watch) before Participants reads them: a
	// sidecar whose agent only subscribes to a topic (and so never watched
	// its routes) still learns the channel's participants, and sees a
	// member's lease end (a committer's successor must).
	Watch func(topic string)

	mu sync.Mutex
	// pending: by topic, the nodes last seen pending withdrawal there.
	pending   map[string]map[string]bool
	withdrawn map[string]bool
	addrs     map[string]string // last routed address by node
}

// Address implements AddressRoster: the address of node's last route
// entry this roster read, "" if none.
func (r *RouteRoster) Address(node string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[node]
}

// Participants implements Roster.
func (r *RouteRoster) Participants(topic string) []string {
	if r.Watch != nil {
		r.Watch(topic)
	}
	eps := r.Endpoints(topic)
	out := make([]string, 0, len(eps))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.withdrawn == nil {
		r.withdrawn, r.pending, r.addrs = map[string]bool{}, map[string]map[string]bool{}, map[string]string{}
	}
	pend := r.pending[topic]
	seen := make(map[string]bool, len(eps))
	for _, ep := range eps {
		if ep == nil || ep.NodeId == "" {
			continue
		}
		seen[ep.NodeId] = true
		if ep.Address != "" {
			r.addrs[ep.NodeId] = ep.Address
		}
		if ep.Status == agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL {
			if pend == nil {
				pend = map[string]bool{}
				r.pending[topic] = pend
			}
			pend[ep.NodeId] = true
			continue
		}
		delete(pend, ep.NodeId)
		delete(r.withdrawn, ep.NodeId)
		out = append(out, ep.NodeId)
	}
	// Pending withdrawal, then gone from the routes: the lease was
	// withdrawn.
	for n := range pend {
		if !seen[n] {
			r.withdrawn[n] = true
			delete(pend, n)
		}
	}
	if len(pend) == 0 {
		delete(r.pending, topic)
	}
	return out
}

// Gone implements Roster.
func (r *RouteRoster) Gone(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withdrawn[node]
}
