package client_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds/client"
	"github.com/agwproject/agw/xds/xdstest"
)

const wait = 10 * time.Second

func hasEndpoint(eps []*agpv1.RouteEndpoint, node string, st agpv1.RouteEndpoint_Status) bool {
	for _, ep := range eps {
		if ep.GetNodeId() == node && ep.GetStatus() == st {
			return true
		}
	}
	return false
}

// removals records the resources a client was told to remove.
type removals struct {
	mu      sync.Mutex
	set     map[string]int
	updated map[string]int
}

func (r *removals) hook(u client.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = map[string]int{}
		r.updated = map[string]int{}
	}
	for n := range u.Updated {
		r.updated[n]++
	}
	for _, n := range u.Removed {
		r.set[n]++
	}
}

func (r *removals) updates(n string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updated[n]
}

func (r *removals) count(n string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[n]
}

func TestSubscriptionBecomesRouteAndUnsubscribeWithdraws(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	a := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-a"))
	b := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-b"))
	wcfg := xdstest.ClientConfig(cp.Addr, "node-c")
	wcfg.Wildcard = true
	c := xdstest.StartClient(t, wcfg)

	const topic = "acme/prod/translator"
	b.Watch(topic)
	a.TopicAdded(topic)
	aAddr := xdstest.ClientConfig(cp.Addr, "node-a").AdvertiseAddress

	for name, cl := range map[string]*client.Client{"on-demand": b, "wildcard": c} {
		xdstest.Eventually(t, wait, name+" client learns node-a's route", func() bool {
			eps := cl.Endpoints(topic)
			return len(eps) == 1 && eps[0].GetAddress() == aAddr && hasEndpoint(eps, "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE)
		})
	}
	// b subscribes too: both nodes appear, sorted by id.
	b.TopicAdded(topic)
	xdstest.Eventually(t, wait, "two endpoints", func() bool {
		eps := b.Endpoints(topic)
		return len(eps) == 2 && eps[0].GetNodeId() == "node-a" && eps[1].GetNodeId() == "node-b"
	})
	// A topic nobody watches on demand does not reach b, but reaches c.
	a.TopicAdded("acme/prod/other")
	xdstest.Eventually(t, wait, "wildcard client gets an unwatched topic", func() bool { return len(c.Endpoints("acme/prod/other")) == 1 })
	if len(b.Endpoints("acme/prod/other")) != 0 {
		t.Fatalf("on-demand client received a topic it does not watch")
	}

	a.TopicRemoved(topic)
	b.TopicRemoved(topic)
	xdstest.Eventually(t, wait, "route withdrawn at both clients", func() bool {
		return b.Endpoints(topic) == nil && c.Endpoints(topic) == nil
	})
	// A topic the control plane would refuse is not mirrored (and does not
	// break the node's mirror stream).
	a.TopicAdded("bad topic")
	a.TopicAdded("acme/prod/after-bad")
	xdstest.Eventually(t, wait, "mirror still works after a bad topic", func() bool { return len(c.Endpoints("acme/prod/after-bad")) == 1 })
	rec := httptest.NewRecorder()
	c.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/routes", nil))
	if body := rec.Body.String(); !strings.Contains(body, `"acme/prod/after-bad"`) || !strings.Contains(body, `"STATUS_ACTIVE"`) || !strings.Contains(body, `"ads_connected": true`) {
		t.Fatalf("debug handler output:\n%s", body)
	}
	st := a.Status()
	if !st.MirrorConnected || st.MirrorAckedSequence < 3 {
		t.Fatalf("mirror status %+v: want connected with acked sequence >= 3", st)
	}
}

func TestLeaseLossWithdrawsAfterGracePeriod(t *testing.T) {
	cfg := xdstest.Config()
	cfg.GracePeriod = 400 * time.Millisecond
	cp := xdstest.StartControlPlane(t, cfg)
	a, err := client.New(xdstest.ClientConfig(cp.Addr, "node-a"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(t.Context()) }()
	b := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-b"))

	const topic = "acme/prod/lease"
	a.TopicAdded(topic)
	b.Watch(topic)
	xdstest.Eventually(t, wait, "route active", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })

	closedAt := time.Now()
	_ = a.Close()
	<-done
	xdstest.Eventually(t, wait, "endpoint pending withdrawal", func() bool {
		return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL)
	})
	xdstest.Eventually(t, wait, "route withdrawn", func() bool { return b.Endpoints(topic) == nil })
	if el := time.Since(closedAt); el < cfg.GracePeriod {
		t.Fatalf("route withdrawn after %s, before the %s grace period", el, cfg.GracePeriod)
	}
}

func TestReconnectWithinGracePeriodLosesNothing(t *testing.T) {
	cfg := xdstest.Config()
	cfg.GracePeriod = 5 * time.Second
	cp := xdstest.StartControlPlane(t, cfg)
	var rm removals
	b := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-b"), client.WithOnUpdate(rm.hook))
	const topic = "acme/prod/sticky"
	b.Watch(topic)

	// node-a reaches the control plane through a proxy that the test cuts.
	proxy := xdstest.StartProxy(t, cp.Addr)
	a := xdstest.StartClient(t, xdstest.ClientConfig(proxy.Addr, "node-a"))
	a.TopicAdded(topic)
	xdstest.Eventually(t, wait, "route active", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })
	proxy.Cut()
	xdstest.Eventually(t, wait, "pending withdrawal", func() bool {
		return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL)
	})
	// node-a reconnects by itself and resends its full table.
	xdstest.Eventually(t, wait, "active again", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })

	// A new process for node-a (same table, set before it connects) within
	// the grace period: nothing lost either.
	proxy.Cut()
	a2, err := client.New(xdstest.ClientConfig(cp.Addr, "node-a"))
	if err != nil {
		t.Fatal(err)
	}
	a2.TopicAdded(topic)
	_ = a.Close()
	done := make(chan struct{})
	go func() { defer close(done); _ = a2.Run(t.Context()) }()
	t.Cleanup(func() { _ = a2.Close(); <-done })
	xdstest.Eventually(t, wait, "new process connected", func() bool { return a2.Status().MirrorConnected })
	xdstest.Eventually(t, wait, "active", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })
	if n := rm.count(topic); n != 0 {
		t.Fatalf("route was removed %d times during reconnects within the grace period", n)
	}
}

func TestControlPlaneRestartKeepsRoutesThenReconverges(t *testing.T) {
	cfg := xdstest.Config()
	cp1 := xdstest.StartControlPlane(t, cfg)
	addr := cp1.Addr
	var rm removals
	a := xdstest.StartClient(t, xdstest.ClientConfig(addr, "node-a"))
	b := xdstest.StartClient(t, xdstest.ClientConfig(addr, "node-b"), client.WithOnUpdate(rm.hook))
	const topic = "acme/prod/restart"
	a.TopicAdded(topic)
	b.Watch(topic)
	xdstest.Eventually(t, wait, "route active", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })

	updatesBefore := rm.updates(topic)
	if err := cp1.Stop(); err != nil {
		t.Fatal(err)
	}
	xdstest.Eventually(t, wait, "client notices the control plane is gone", func() bool { return !b.Status().ADSConnected })
	// Routing continues on the last good routes while it is down, and a
	// subscription made meanwhile is kept locally.
	time.Sleep(100 * time.Millisecond)
	if !hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) {
		t.Fatalf("route lost while the control plane is down: %v", b.Endpoints(topic))
	}
	a.TopicAdded("acme/prod/while-down")

	// A new, empty control plane on the same address; its warm-up lets the
	// mirrors refill the index before it answers xDS.
	cfg2 := cfg
	cfg2.Listen = addr
	cfg2.Warmup = 1500 * time.Millisecond
	xdstest.StartControlPlane(t, cfg2)
	b.Watch("acme/prod/while-down")
	xdstest.Eventually(t, wait, "reconverged on the new control plane", func() bool {
		return hasEndpoint(b.Endpoints("acme/prod/while-down"), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) && b.Status().ADSConnected
	})
	if !hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) {
		t.Fatalf("old route lost after restart: %v", b.Endpoints(topic))
	}
	if n := rm.count(topic); n != 0 {
		t.Fatalf("route was removed %d times across the restart", n)
	}
	// The client resubscribed with the version it held
	// (initial_resource_versions), so the unchanged route was not resent.
	if n := rm.updates(topic); n != updatesBefore {
		t.Fatalf("unchanged route resent after reconnect: %d updates, %d before", n, updatesBefore)
	}
	// And changes flow again.
	a.TopicRemoved(topic)
	xdstest.Eventually(t, wait, "withdrawal after restart", func() bool { return b.Endpoints(topic) == nil })
}

func TestNACKKeepsLastGoodRoute(t *testing.T) {
	cp := xdstest.StartControlPlane(t, xdstest.Config())
	a := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-a"))
	var mu sync.Mutex
	var nacks []error
	b := xdstest.StartClient(t, xdstest.ClientConfig(cp.Addr, "node-b"), client.WithOnUpdate(func(u client.Update) {
		if u.NACK != nil {
			mu.Lock()
			nacks = append(nacks, u.NACK)
			mu.Unlock()
		}
	}))
	const topic = "acme/prod/nack"
	a.TopicAdded(topic)
	b.Watch(topic)
	xdstest.Eventually(t, wait, "route active", func() bool { return hasEndpoint(b.Endpoints(topic), "node-a", agpv1.RouteEndpoint_STATUS_ACTIVE) })
	good := b.Endpoints(topic)

	bad := []*agpv1.TopicRoute{
		{Topic: topic, Endpoints: []*agpv1.RouteEndpoint{{NodeId: "", Address: "127.0.0.1:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}},
		{Topic: topic, Endpoints: []*agpv1.RouteEndpoint{{NodeId: "node-x", Address: "no-port", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}},
		{Topic: "other/topic", Endpoints: []*agpv1.RouteEndpoint{{NodeId: "node-x", Address: "127.0.0.1:1", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}}},
		{Topic: topic, Endpoints: []*agpv1.RouteEndpoint{{NodeId: "node-x", Address: "127.0.0.1:1", Status: 99}}},
	}
	for i, r := range bad {
		if err := cp.Cache().UpdateResource(topic, r); err != nil {
			t.Fatal(err)
		}
		xdstest.Eventually(t, wait, "NACK", func() bool { mu.Lock(); defer mu.Unlock(); return len(nacks) == i+1 })
		if got := b.Endpoints(topic); len(got) != 1 || got[0] != good[0] {
			t.Fatalf("bad resource %d replaced the last good route: %v", i, got)
		}
	}
	var found bool
	for _, rs := range b.DebugRoutes() {
		if rs.Name == topic {
			found = true
			if rs.LastNACK == "" || rs.BadVersion == "" || rs.Version == "" || len(rs.Endpoints) != 1 {
				t.Fatalf("debug route state %+v: want last NACK, bad version and the good route", rs)
			}
		}
	}
	if !found {
		t.Fatal("debug routes miss the topic")
	}
	// The control plane saw the NACKs.
	var sawNACK bool
	for _, n := range cp.DebugNodes() {
		for _, s := range n.Streams {
			if n.NodeID == "node-b" && s.NACKs >= uint64(len(bad)) && s.LastNACK != "" {
				sawNACK = true
			}
		}
	}
	if !sawNACK {
		t.Fatalf("control plane did not record node-b's NACKs: %+v", cp.DebugNodes())
	}
	// A good version is accepted again.
	a.TopicRemoved(topic)
	xdstest.Eventually(t, wait, "withdrawn", func() bool { return b.Endpoints(topic) == nil })
}

func TestCloseIdempotent(t *testing.T) {
	c, err := client.New(xdstest.ClientConfig("127.0.0.1:1", "node-z"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Run after Close returns at once.
	done := make(chan error, 1)
	go func() { done <- c.Run(t.Context()) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Run after Close did not return")
	}
	if err := c.Run(t.Context()); err == nil {
		t.Fatal("second Run accepted")
	}
	// Routes stay readable.
	if c.Endpoints("x") != nil {
		t.Fatal("unexpected route")
	}
}
