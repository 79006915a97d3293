package e2ee

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agwproject/agw/sidecar/sidecartest"
)

// TestFirstMulticastPublisherNotLowest: the subscribers a and b have no
// route for the topic and no link with each other; the publisher c (the
// highest id, so not the channel's committer) learns the route to both
// and publishes at once. The committer ends up being a subscriber, and the
// other subscriber is invited to it: the invitation carries the
// committer's address, so the two subscribers link and the message reaches
// both.
func TestFirstMulticastPublisherNotLowest(t *testing.T) {
	mesh, routes := startRouted(t, "a", "b", "c")
	ctx := ctxT(t)
	subA := sidecartest.DialAgent(t, mesh[0].node)
	subB := sidecartest.DialAgent(t, mesh[1].node)
	pub := sidecartest.DialAgent(t, mesh[2].node)
	for _, ag := range []*sidecartest.Agent{subA, subB} {
		if err := ag.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "a and b hold a channel", func() bool {
		_, okA := groupOf(mesh[0].mgr, topic)
		_, okB := groupOf(mesh[1].mgr, topic)
		return okA && okB
	})
	routes[2].set(topic, mesh[0], mesh[1])
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		ack, err := pub.PublishTo(ctx, topic, 0, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if ack.RemoteDeliveries != 2 {
			t.Fatalf("remote deliveries %d, want 2", ack.RemoteDeliveries)
		}
		for _, r := range []struct {
			who string
			ag  *sidecartest.Agent
		}{{"a", subA}, {"b", subB}} {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := r.ag.Next(rctx)
			cancel()
			if err != nil {
				for _, mn := range mesh {
					t.Logf("%s: groups %+v security %v", mn.id, mn.mgr.Groups(), dumpEvents(mn.mgr))
				}
				t.Fatalf("%s received nothing of %q: %v", r.who, msg, err)
			}
			if string(m.Payload) != msg {
				t.Fatalf("%s received %q, want %q", r.who, m.Payload, msg)
			}
		}
	}
	// One group, the same epoch and members everywhere.
	ga, _ := groupOf(mesh[0].mgr, topic)
	gb, _ := groupOf(mesh[1].mgr, topic)
	gc, _ := groupOf(mesh[2].mgr, topic)
	if ga.GroupID != gc.GroupID || gb.GroupID != gc.GroupID || len(gc.Members) != 3 {
		t.Fatalf("channel forked or incomplete: a %+v b %+v c %+v", ga, gb, gc)
	}
}
