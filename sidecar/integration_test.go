package sidecar_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

const topic = "acme/prod/search"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func peerStatus(n *sidecar.Node, node string) sidecar.ConnStatus {
	for _, c := range n.Connections() {
		if c.Kind == sidecar.KindPeer && c.NodeID == node {
			return c.Status
		}
	}
	return 0
}

// mesh starts nodes with the given ids, all peered statically, with routes
// for topic to every node in routeTo.
func mesh(t *testing.T, ids []string, routes map[string][]string, tweak func(*sidecar.Config)) []*sidecar.Node {
	t.Helper()
	// Start nodes first without peers to learn the ports, then restart is
	// not possible with :0, so instead start in order and give each later
	// node the addresses of the earlier ones; routes name nodes by id and
	// inbound links supply the way back.
	var nodes []*sidecar.Node
	addrs := map[string]string{}
	for _, id := range ids {
		cfg := sidecartest.Config(id)
		for pid, a := range addrs {
			cfg.StaticPeers = append(cfg.StaticPeers, pid+"="+a)
		}
		for tp, targets := range routes {
			for _, to := range targets {
				if to != id {
					cfg.StaticRoutes = append(cfg.StaticRoutes, tp+"="+to)
				}
			}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n := sidecartest.Start(t, cfg)
		addrs[id] = n.PeerAddr().String()
		nodes = append(nodes, n)
	}
	// Wait for the full mesh.
	for _, n := range nodes {
		for _, id := range ids {
			if id == n.NodeID() {
				continue
			}
			eventually(t, 5*time.Second, fmt.Sprintf("%s linked to %s", n.NodeID(), id), func() bool {
				return peerStatus(n, id) == sidecar.StatusUp
			})
		}
	}
	return nodes
}

func TestTwoNodesPublish(t *testing.T) {
	ctx := ctxT(t)
	nodes := mesh(t, []string{"a", "b"}, map[string][]string{topic: {"b"}}, nil)
	sub := sidecartest.DialAgent(t, nodes[1])
	if err := sub.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	pub := sidecartest.DialAgent(t, nodes[0])
	ack, err := pub.PublishTo(ctx, topic, 0, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.RemoteDeliveries != 1 || ack.LocalDeliveries != 0 || ack.MessageId == "" {
		t.Fatalf("ack = %v", ack)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "hello" || m.Header.MessageId != ack.MessageId {
		t.Fatalf("got %v", m)
	}
	if m.Header.HopLimit != 7 {
		t.Fatalf("hop limit %d, want default 8 decremented to 7", m.Header.HopLimit)
	}
}

var _ = agpv1.Message{}
