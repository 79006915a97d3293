package e2ee

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func TestRouteRoster(t *testing.T) {
	var mu sync.Mutex
	eps := []*agpv1.RouteEndpoint{
		{NodeId: "a", Status: agpv1.RouteEndpoint_STATUS_ACTIVE},
		{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL},
		nil,
		{NodeId: ""},
		{NodeId: "c", Status: agpv1.RouteEndpoint_STATUS_ACTIVE},
	}
	set := func(i int, ep *agpv1.RouteEndpoint) { mu.Lock(); eps[i] = ep; mu.Unlock() }
	var watched []string
	r := &RouteRoster{
		Endpoints: func(topic string) []*agpv1.RouteEndpoint {
			mu.Lock()
			defer mu.Unlock()
			if topic == "t" {
				return slices.Clone(eps)
			}
			return nil
		},
		Watch: func(topic string) { watched = append(watched, topic) },
	}
	// b's lease ended: not a participant, but not gone during the grace.
	if p := r.Participants("t"); !slices.Equal(p, []string{"a", "c"}) {
		t.Fatalf("participants %v", p)
	}
	if r.Gone("b") || r.Gone("a") {
		t.Fatal("gone during the grace period")
	}
	// b is back within the grace period: still a member.
	set(1, &agpv1.RouteEndpoint{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_ACTIVE})
	if p := r.Participants("t"); !slices.Equal(p, []string{"a", "b", "c"}) || r.Gone("b") {
		t.Fatalf("b back: %v", p)
	}
	// b's lease ends and the grace period runs out: gone.
	set(1, &agpv1.RouteEndpoint{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL})
	r.Participants("t")
	set(1, nil)
	if p := r.Participants("t"); !slices.Equal(p, []string{"a", "c"}) || !r.Gone("b") {
		t.Fatalf("b withdrawn: %v, gone %v", p, r.Gone("b"))
	}
	// c unsubscribes (its entry goes without a lease ending): not gone.
	set(4, nil)
	if p := r.Participants("t"); !slices.Equal(p, []string{"a"}) || r.Gone("c") {
		t.Fatalf("c unsubscribed: %v, gone %v", p, r.Gone("c"))
	}
	// b comes back later: no longer gone.
	set(1, &agpv1.RouteEndpoint{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_ACTIVE})
	if p := r.Participants("t"); !slices.Equal(p, []string{"a", "b"}) || r.Gone("b") {
		t.Fatalf("b back later: %v", p)
	}
	if len(watched) == 0 || watched[0] != "t" {
		t.Fatalf("Watch calls %v", watched)
	}
}

// The agent's last unsubscribe leaves the channel after the grace; a new
// subscription within it keeps the membership.
func TestSubscriptionSinkGrace(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2"}
	f.roster.set(topic, nodes...)
	grace := func(c *Config) { c.LeaveGrace = 200 * time.Millisecond }
	a, b := f.manager("n1", grace), f.manager("n2", grace)
	a.TopicAdded(topic)
	b.TopicAdded(topic)
	g0 := converged(t, nodes, a, b)
	b.TopicRemoved(topic)
	b.TopicAdded(topic) // within the grace
	time.Sleep(400 * time.Millisecond)
	if g, _ := groupOf(a, topic); g.Epoch != g0.Epoch || !contains(a, topic, "n2") {
		t.Fatalf("membership changed: %+v", g)
	}
	b.TopicRemoved(topic)
	converged(t, []string{"n1"}, a)
	if _, ok := groupOf(b, topic); ok {
		t.Fatal("n2 still holds the channel")
	}
}

// routeTable is the routes of one topic as a control plane serves them to
// every sidecar (each Manager reads them through its own RouteRoster).
type routeTable struct {
	mu  sync.Mutex
	eps []*agpv1.RouteEndpoint
}

func (rt *routeTable) set(status agpv1.RouteEndpoint_Status, nodes ...string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.eps = nil
	for _, n := range nodes {
		rt.eps = append(rt.eps, &agpv1.RouteEndpoint{NodeId: n, Status: status})
	}
}

func (rt *routeTable) setStatus(node string, status agpv1.RouteEndpoint_Status) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i, ep := range rt.eps {
		if ep.NodeId == node {
			rt.eps[i] = &agpv1.RouteEndpoint{NodeId: node, Status: status}
		}
	}
}

func (rt *routeTable) remove(node string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.eps = slices.DeleteFunc(slices.Clone(rt.eps), func(ep *agpv1.RouteEndpoint) bool { return ep.NodeId == node })
}

func (rt *routeTable) endpoints(tp string) []*agpv1.RouteEndpoint {
	if tp != topic {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.eps)
}

// managerWithRoster is fixture.manager with a Roster of its own.
func (f *fixture) managerWithRoster(node string, r Roster) *Manager {
	f.t.Helper()
	m, err := New(f.cfg, node, f.source(f.ca, node), endpoint{f.hub, node}, WithRoster(r))
	if err != nil {
		f.t.Fatal(err)
	}
	f.hub.attach(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); _ = m.Close(); <-done })
	return m
}

// The committer's lease ends: its routes turn PENDING_WITHDRAWAL for the
// grace period (it stays a member and the committer), then disappear. Every member has its own RouteRoster, as
// in real sidecars, and the successor (not a committer, so it had no
// reason to read the roster) still learns that the committer is gone and
// takes over. Each roster watches the topic's routes before reading them.
func TestSuccessorLearnsCommitterGoneFromRoutes(t *testing.T) {
	f := newFixture(t)
	nodes := []string{"n1", "n2", "n3"}
	f.roster.set(topic, nodes...)
	rt := &routeTable{}
	rt.set(agpv1.RouteEndpoint_STATUS_ACTIVE, nodes...)
	var wmu sync.Mutex
	watched := map[string]bool{}
	ms := map[string]*Manager{}
	for _, n := range nodes {
		r := &RouteRoster{Endpoints: rt.endpoints, Watch: func(tp string) {
			wmu.Lock()
			defer wmu.Unlock()
			watched[n+" "+tp] = true
		}}
		ms[n] = f.managerWithRoster(n, r)
	}
	joinAll(t, ms["n1"], ms["n2"], ms["n3"])
	converged(t, nodes, ms["n1"], ms["n2"], ms["n3"])
	wmu.Lock()
	for _, n := range nodes {
		if !watched[n+" "+topic] {
			t.Errorf("%s's roster never watched %s", n, topic)
		}
	}
	wmu.Unlock()

	_ = ms["n1"].Close()
	rt.setStatus("n1", agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL)
	time.Sleep(5 * f.cfg.RetryInterval) // the grace period
	for _, n := range []string{"n2", "n3"} {
		if g, _ := groupOf(ms[n], topic); g.Committer != "n1" || len(g.Members) != 3 {
			t.Fatalf("%s during the grace period: committer %s, members %v; want n1 kept until its lease is withdrawn", n, g.Committer, memberNodes(g))
		}
	}
	rt.remove("n1")
	g := converged(t, []string{"n2", "n3"}, ms["n2"], ms["n3"])
	if g.Committer != "n2" {
		t.Fatalf("successor %q, want n2", g.Committer)
	}
	broadcast(t, ms["n3"], "after the hand-over", ms["n2"])
}

// A handshake to a node with no link or known address goes to the address
// the roster read in the node's routes (two subscriber-only sidecars have
// no other way to link, and a committer's successor must reach them).
func TestHandshakeUsesRoutedAddress(t *testing.T) {
	f := newFixture(t)
	rt := &routeTable{}
	rt.set(agpv1.RouteEndpoint_STATUS_ACTIVE, "n2")
	rt.mu.Lock()
	rt.eps[0].Address = "127.0.0.1:4711"
	rt.mu.Unlock()
	r := &RouteRoster{Endpoints: rt.endpoints}
	m := f.managerWithRoster("n1", r)
	var mu sync.Mutex
	known := map[string]string{}
	m.BindAddresses(func(node string) string {
		mu.Lock()
		defer mu.Unlock()
		return known[node]
	}, func(node, addr string) {
		mu.Lock()
		defer mu.Unlock()
		known[node] = addr
	})
	if got := r.Address("n2"); got != "" {
		t.Fatalf("address %q before the routes were read", got)
	}
	r.Participants(topic)
	if got := r.Address("n2"); got != "127.0.0.1:4711" {
		t.Fatalf("routed address %q", got)
	}
	m.send(ctxT(t), "n2", Envelope{Kind: KindInvite, Name: topic})
	mu.Lock()
	defer mu.Unlock()
	if known["n2"] != "127.0.0.1:4711" {
		t.Fatalf("the handshake to n2 did not use its routed address: %v", known)
	}
}
