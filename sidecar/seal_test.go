package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/proto"
)

// recCrypter is a PeerCrypter for the node's own tests: a seal is the
// plaintext behind a readable prefix naming its group and the hash of its
// routing header, so a test can see which messages went into which seal;
// Open checks and strips it. (Real MLS is tested in sidecar/e2ee.)
type recCrypter struct {
	mu    sync.Mutex
	seals []recSeal
	fail  map[string]bool // groups whose SealNow fails
}

type recSeal struct {
	group string // "p2p:<peer>" or "ch:<topic>"
	n     int
}

func (c *recCrypter) PreparePeer(context.Context, string) error { return nil }
func (c *recCrypter) PrepareChannel(context.Context, string, []string) error {
	return nil
}
func (c *recCrypter) SealOverhead() int { return 64 }

func (c *recCrypter) SealNow(_ context.Context, peer, topic string, routing []byte, parts [][]byte, n int, dst []byte) ([]byte, error) {
	g := "ch:" + topic
	if topic == "" {
		g = "p2p:" + peer
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail[g] {
		return nil, errors.New("test: no group " + g)
	}
	c.seals = append(c.seals, recSeal{group: g, n: n})
	dst = append(dst, fmt.Sprintf("sealed|%s|%x|", g, routing)...)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst, nil
}

func (c *recCrypter) OpenInPlace(_ context.Context, _ string, routing, sealed []byte) ([]byte, error) {
	parts := bytes.SplitN(sealed, []byte("|"), 4)
	if len(parts) != 4 || string(parts[0]) != "sealed" || string(parts[2]) != fmt.Sprintf("%x", routing) {
		return nil, errors.New("test: not sealed with this routing header")
	}
	return parts[3], nil
}

func (c *recCrypter) HandleHandshake(context.Context, string, []byte) error     { return nil }
func (c *recCrypter) BindTransport(func(context.Context, string, []byte) error) {}

// unsealFrames opens every sealed message of the frames sent and returns,
// in order, the handshake payloads ("hs:<payload>") and the inner
// messages' message ids.
func unsealFrames(t *testing.T, c *recCrypter, frames []*agpv1.PeerFrame) []string {
	t.Helper()
	var out []string
	for _, m := range sentMessages(frames) {
		h := m.GetHeader()
		if h.GetDestination() == HandshakeDestination {
			out = append(out, "hs:"+string(m.Payload))
			continue
		}
		if h.GetContentType() != SealedContentType {
			t.Fatalf("unsealed message to a peer: %v", h)
		}
		plain, err := c.OpenInPlace(context.Background(), "", RoutingAAD(h.Source, h.Destination, h.Fanout, h.HopLimit), m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var b agpv1.Batch
		if err := proto.Unmarshal(plain, &b); err != nil {
			t.Fatalf("sealed plaintext is not a Batch: %v", err)
		}
		for _, in := range b.GetMessages() {
			if h.Fanout != 1 && in.GetHeader().GetDestination() != h.Destination {
				t.Fatalf("channel batch to %s holds a message to %s", h.Destination, in.GetHeader().GetDestination())
			}
			out = append(out, in.GetHeader().GetMessageId())
		}
	}
	return out
}

func TestSealRunsPerGroup(t *testing.T) {
	c := &recCrypter{}
	cfg := testNodeCfg("a")
	cfg.QueueSize = 64
	n := newTestNode(t, cfg, WithPeerCrypter(c))
	p := n.peerFor("b", "", false)
	l, sent := captureLink(t, p, true)

	mk := func(id, dest string, fan uint32) peerItem {
		m := msgTo(dest, fan)
		m.Header.MessageId = id
		return peerItem{w: wm(m), t0: 1, seal: true}
	}
	hs := func(payload string) peerItem {
		w, err := buildWmsg(&agpv1.Header{Destination: HandshakeDestination, HopLimit: 1}, [][]byte{payloadField([]byte(payload))})
		if err != nil {
			t.Fatal(err)
		}
		return peerItem{w: w, t0: 1}
	}
	items := []peerItem{
		hs("welcome"),
		mk("1", "org/ns/a", 0), mk("2", "org/ns/a", 0), mk("3", "org/ns/a", 5),
		mk("4", "org/ns/b", 0),
		mk("5", "org/ns/x", 1), mk("6", "org/ns/y", 1),
		hs("commit"),
		mk("7", "org/ns/a", 0),
	}
	if !n.sendItems(l, items) {
		t.Fatal("send failed")
	}
	got := unsealFrames(t, c, *sent)
	want := []string{"hs:welcome", "1", "2", "3", "4", "5", "6", "hs:commit", "7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("peer got %v, want %v", got, want)
	}
	wantSeals := []recSeal{{"ch:org/ns/a", 3}, {"ch:org/ns/b", 1}, {"p2p:b", 2}, {"ch:org/ns/a", 1}}
	if fmt.Sprint(c.seals) != fmt.Sprint(wantSeals) {
		t.Fatalf("seals %v, want %v", c.seals, wantSeals)
	}
}

func TestSealRunsRespectSizeLimit(t *testing.T) {
	c := &recCrypter{}
	cfg := testNodeCfg("a")
	n := newTestNode(t, cfg, WithPeerCrypter(c))
	p := n.peerFor("b", "", false)
	l, sent := captureLink(t, p, true)
	msgs := batchMsgs(10, 1000)
	// Room for three messages per seal, after the crypter's overhead.
	p.maxMsg.Store(uint32(3*batchEntrySize(wm(msgs[9])) + c.SealOverhead()))
	items := make([]peerItem, len(msgs))
	for i, m := range msgs {
		items[i] = peerItem{w: wm(m), t0: 1, seal: true}
	}
	if !n.sendItems(l, items) {
		t.Fatal("send failed")
	}
	if got := unsealFrames(t, c, *sent); len(got) != 10 {
		t.Fatalf("peer got %d messages, want 10", len(got))
	}
	for _, s := range c.seals {
		if s.n > 3 {
			t.Fatalf("a seal of %d messages exceeds the peer's limit: %v", s.n, c.seals)
		}
	}
	if len(c.seals) != 4 {
		t.Fatalf("seals %v, want 4 (3+3+3+1)", c.seals)
	}
}

func TestSealFailureDropsOnlyItsRun(t *testing.T) {
	c := &recCrypter{fail: map[string]bool{"ch:org/ns/bad": true}}
	n := newTestNode(t, testNodeCfg("a"), WithPeerCrypter(c))
	p := n.peerFor("b", "", false)
	l, sent := captureLink(t, p, true)
	mk := func(id, dest string) peerItem {
		m := msgTo(dest, 0)
		m.Header.MessageId = id
		return peerItem{w: wm(m), t0: 1, seal: true}
	}
	if !n.sendItems(l, []peerItem{mk("1", "org/ns/ok"), mk("2", "org/ns/bad"), mk("3", "org/ns/bad"), mk("4", "org/ns/ok")}) {
		t.Fatal("send failed")
	}
	if got := unsealFrames(t, c, *sent); fmt.Sprint(got) != "[1 4]" {
		t.Fatalf("peer got %v, want [1 4]", got)
	}
	if d := p.drops.Load(); d != 2 {
		t.Fatalf("peer drops %d, want 2", d)
	}
}

// A handshake queued before a writer seals goes out before the sealed
// messages, even when the data was queued first: a message sealed in an
// epoch must not reach the peer before the commit or Welcome that makes
// it.
func TestHandshakesGoBeforeSealedMessages(t *testing.T) {
	c := &recCrypter{}
	n := newTestNode(t, testNodeCfg("a"), WithPeerCrypter(c))
	p := n.peerFor("b", "", false)
	l, sent := captureLink(t, p, true)
	m := msgTo("org/ns/a", 0)
	m.Header.MessageId = "data"
	w := wm(m)
	if !n.enqueueItem(p, peerItem{w: w, t0: 1, seal: true}) {
		t.Fatal("queue full")
	}
	w.unref()
	if err := n.sendHandshake(context.Background(), "b", []byte("welcome")); err != nil {
		t.Fatal(err)
	}
	it := <-p.q
	if !n.sendQueued(l, it, make([]peerItem, 0, maxBatch)) {
		t.Fatal("send failed")
	}
	if got := unsealFrames(t, c, *sent); fmt.Sprint(got) != "[hs:welcome data]" {
		t.Fatalf("peer got %v, want the handshake first", got)
	}
}

func TestSplitSealed(t *testing.T) {
	m := &agpv1.Message{Header: &agpv1.Header{Destination: "org/ns/a", Fanout: 1, HopLimit: 1, ContentType: SealedContentType}, Payload: []byte("ciphertext")}
	b, _ := proto.Marshal(m)
	h, payload, err := splitSealed(b)
	if err != nil || !proto.Equal(h, m.Header) || string(payload) != "ciphertext" {
		t.Fatalf("splitSealed = %v, %q, %v", h, payload, err)
	}
	if _, _, err := splitSealed([]byte{0x12, 0x01, 'x'}); err == nil {
		t.Fatal("a message without header was accepted")
	}
	if _, _, err := splitSealed([]byte{0x0a, 0x05, 0x01}); err == nil {
		t.Fatal("a truncated header was accepted")
	}
}

// FuzzSplitSealed: the sealed-message decoder never panics, and agrees
// with protobuf on what it accepts.
func FuzzSplitSealed(f *testing.F) {
	m := &agpv1.Message{Header: &agpv1.Header{Destination: "org/ns/a", HopLimit: 1, ContentType: SealedContentType}, Payload: []byte("x")}
	b, _ := proto.Marshal(m)
	f.Add(b)
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := splitSealed(b)
		var want agpv1.Message
		perr := proto.Unmarshal(b, &want)
		if err == nil {
			if perr != nil {
				t.Fatalf("accepted what protobuf refuses: %v", perr)
			}
			if !proto.Equal(h, want.Header) || !bytes.Equal(payload, want.Payload) {
				t.Fatalf("decoded %v %q, protobuf %v %q", h, payload, want.Header, want.Payload)
			}
		}
	})
}

// A multicast with MLS is sealed once for all its peers by its channel's
// sealer, in runs: both peers get the very same sealed messages, and the
// number of seals is at most the number of messages.
func TestMulticastSealedOnceForAllPeers(t *testing.T) {
	c := &recCrypter{}
	routes := routeMap{tp: {ep("b"), ep("c")}}
	cfg := testNodeCfg("a")
	cfg.QueueSize = 256
	n := newTestNode(t, cfg, WithPeerCrypter(c), WithRouteSource(routes))
	pb, pc := n.peerFor("b", "", false), n.peerFor("c", "", false)
	pb.setStatus(StatusUp)
	pc.setStatus(StatusUp)
	pub := n.testConn(t)
	const k = 50
	for i := range k {
		m := msgTo(tp, 0)
		m.Header.MessageId = fmt.Sprint(i)
		if _, r := n.forward(wm(m), pub, 1); r != 2 {
			t.Fatalf("message %d queued for %d peers, want 2", i, r)
		}
	}
	take := func(p *peer) []peerItem {
		var got []peerItem
		deadline := time.After(5 * time.Second)
		for count := 0; count < k; {
			select {
			case it := <-p.q:
				got = append(got, it)
				count += it.count()
			case <-deadline:
				t.Fatalf("peer %s got %d of %d messages", p.nodeID, count, k)
			}
		}
		return got
	}
	gb, gc := take(pb), take(pc)
	if len(gb) != len(gc) {
		t.Fatalf("b got %d sealed messages, c %d", len(gb), len(gc))
	}
	for i := range gb {
		if gb[i].w != gc[i].w || gb[i].seal || gb[i].w.fanout != 0 {
			t.Fatalf("sealed message %d differs between the peers or is not sealed", i)
		}
	}
	c.mu.Lock()
	seals := len(c.seals)
	sealed := 0
	for _, s := range c.seals {
		sealed += s.n
		if s.group != "ch:"+tp {
			t.Errorf("sealed in %s", s.group)
		}
	}
	c.mu.Unlock()
	if sealed != k || seals != len(gb) {
		t.Fatalf("%d seals holding %d messages; peers got %d sealed messages", seals, sealed, len(gb))
	}
	if count, sum := histogram(t, n, "agw_sidecar_seal_run_messages", "channel"); count != uint64(seals) || sum != float64(k) {
		t.Fatalf("agw_sidecar_seal_run_messages{group=channel}: %d runs of %v messages, want %d of %d", count, sum, seals, k)
	}
	// The order of the messages is kept.
	l, sent := captureLink(t, pb, true)
	if !n.sendItems(l, gb) {
		t.Fatal("send failed")
	}
	got := unsealFrames(t, c, *sent)
	for i, id := range got {
		if id != fmt.Sprint(i) {
			t.Fatalf("message %d is %s", i, id)
		}
	}
	for _, it := range gc {
		it.w.unref()
	}
}

// Anycast messages are sealed by their peer's session sealer, in the
// session with that peer, in the order they were published.
func TestAnycastSealedPerSession(t *testing.T) {
	c := &recCrypter{}
	routes := routeMap{tp: {ep("b"), ep("c")}, "o/n/other": {ep("b")}}
	cfg := testNodeCfg("a")
	cfg.QueueSize = 256
	n := newTestNode(t, cfg, WithPeerCrypter(c), WithRouteSource(routes))
	pb, pc := n.peerFor("b", "", false), n.peerFor("c", "", false)
	pb.setStatus(StatusUp)
	pc.setStatus(StatusUp)
	pub := n.testConn(t)
	const k = 40
	for i := range k {
		dest := tp
		if i%4 == 3 {
			dest = "o/n/other"
		}
		m := msgTo(dest, 1)
		m.Header.MessageId = fmt.Sprint(i)
		if _, r := n.forward(wm(m), pub, 1); r != 1 {
			t.Fatalf("message %d queued for %d peers, want 1", i, r)
		}
	}
	got := map[*peer][]string{}
	lb, sentB := captureLink(t, pb, true)
	lc, sentC := captureLink(t, pc, true)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, x := range []struct {
			p *peer
			l *peerLink
		}{{pb, lb}, {pc, lc}} {
			for len(x.p.q) > 0 {
				if !n.sendItems(x.l, []peerItem{<-x.p.q}) {
					t.Fatal("send failed")
				}
			}
		}
		got[pb], got[pc] = unsealFrames(t, c, *sentB), unsealFrames(t, c, *sentC)
		if len(got[pb])+len(got[pc]) == k {
			break
		}
	}
	if len(got[pb])+len(got[pc]) != k || len(got[pc]) == 0 {
		t.Fatalf("b got %v, c got %v", got[pb], got[pc])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.seals {
		if s.group != "p2p:b" && s.group != "p2p:c" {
			t.Fatalf("anycast sealed in %s", s.group)
		}
	}
	// Each peer's messages arrive in publishing order.
	for p, ids := range got {
		last := -1
		for _, id := range ids {
			var i int
			fmt.Sscan(id, &i)
			if i <= last {
				t.Fatalf("peer %s got %v out of order", p.nodeID, ids)
			}
			last = i
		}
	}
}

// histogram returns the sample count and sum of the series of a histogram
// whose only label has value label.
func histogram(t *testing.T, n *Node, name, label string) (uint64, float64) {
	t.Helper()
	mfs, err := n.gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0, 0
}
