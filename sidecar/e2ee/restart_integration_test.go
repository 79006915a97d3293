package e2ee

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

// startOne starts a sidecar with a Manager; stop ends both.
func startOne(t *testing.T, id string, src *identity.Source, ros Roster, peerListen string, peers []string, mod func(*Config)) (*sidecar.Node, *Manager, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.RetryInterval, cfg.EpochWait, cfg.JoinTimeout = 20*time.Millisecond, 2*time.Second, 5*time.Second
	if mod != nil {
		mod(&cfg)
	}
	mgr, err := New(cfg, id, src, nil, WithRoster(ros))
	if err != nil {
		t.Fatal(err)
	}
	sc := sidecartest.Config(id)
	if peerListen != "" {
		sc.PeerListen = peerListen
	}
	sc.StaticPeers = peers
	for _, p := range peers {
		n, _, _ := cutEq(p)
		sc.StaticRoutes = append(sc.StaticRoutes, topic+"="+n)
	}
	n, err := sidecar.New(sc, sidecar.WithPeerCrypter(mgr), sidecar.WithSubscriptionSink(mgr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd, md := make(chan struct{}), make(chan struct{})
	go func() { defer close(nd); _ = n.Run(ctx) }()
	go func() { defer close(md); _ = mgr.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-nd
		_ = mgr.Close()
		<-md
	}
	t.Cleanup(stop)
	select {
	case <-n.Ready():
	case <-nd:
		t.Fatal("sidecar did not start")
	}
	return n, mgr, stop
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestIntegrationRestartWithStateResumes(t *testing.T) {
	dir := t.TempDir()
	ca, _ := identity.NewCA("example.org")
	ros := newRoster()
	ros.set(topic, "a", "b")
	svidB, err := ca.Issue(identity.MustParseID("spiffe://example.org/ns/agents/sa/b"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srcB := func() *identity.Source {
		s, err := identity.NewMemorySource(svidB, ca.Bundle(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	srcA, _ := ca.MemorySource(identity.MustParseID("spiffe://example.org/ns/agents/sa/a"), time.Hour)
	t.Cleanup(func() { _ = srcA.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrB := ln.Addr().String()
	ln.Close()
	state := func(c *Config) { c.StateDir, c.StateKey = dir, testStateKey }

	nb, mb, stopB := startOne(t, "b", srcB(), ros, addrB, nil, state)
	na, ma, _ := startOne(t, "a", srcA, ros, "", []string{"b=" + addrB}, nil)
	ctx := ctxT(t)
	pub := sidecartest.DialAgent(t, na)
	sub := sidecartest.DialAgent(t, nb)
	if err := sub.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	deliver := func(sub *sidecartest.Agent, payload string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := pub.PublishTo(ctx, topic, 0, []byte(payload)); err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			m, err := sub.Next(short)
			cancel()
			if err == nil && string(m.Payload) == payload {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q not delivered", payload)
			}
		}
	}
	deliver(sub, "before restart")
	before, ok := groupOf(mb, topic)
	if !ok {
		t.Fatal("b holds no channel")
	}
	sub.Close()
	stopB()

	nb2, mb2, _ := startOne(t, "b", srcB(), ros, addrB, nil, state)
	if g, ok := groupOf(mb2, topic); !ok || g.GroupID != before.GroupID {
		t.Fatalf("channel not restored: %+v", mb2.Groups())
	}
	sub2 := sidecartest.DialAgent(t, nb2)
	if err := sub2.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	deliver(sub2, "after restart")
	after, _ := groupOf(mb2, topic)
	if after.GroupID != before.GroupID || after.Epoch <= before.Epoch {
		t.Fatalf("before %+v after %+v", before, after)
	}
	if w := testutil.ToFloat64(mb2.met.welcomes); w != 0 {
		t.Fatalf("b rejoined (%v welcomes)", w)
	}
	if g, _ := groupOf(ma, topic); g.GroupID != before.GroupID {
		t.Fatal("a's channel changed")
	}
}
