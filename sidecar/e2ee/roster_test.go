package e2ee

import (
	"slices"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

func TestRouteRoster(t *testing.T) {
	eps := []*agpv1.RouteEndpoint{
		{NodeId: "a", Status: agpv1.RouteEndpoint_STATUS_ACTIVE},
		{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL},
		nil,
		{NodeId: ""},
	}
	r := &RouteRoster{Endpoints: func(topic string) []*agpv1.RouteEndpoint {
		if topic == "t" {
			return eps
		}
		return nil
	}}
	if p := r.Participants("t"); !slices.Equal(p, []string{"a"}) {
		t.Fatalf("participants %v", p)
	}
	if !r.Gone("b") || r.Gone("a") {
		t.Fatal("gone")
	}
	eps[1] = &agpv1.RouteEndpoint{NodeId: "b", Status: agpv1.RouteEndpoint_STATUS_ACTIVE}
	if p := r.Participants("t"); !slices.Equal(p, []string{"a", "b"}) || r.Gone("b") {
		t.Fatalf("b back: %v", p)
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
