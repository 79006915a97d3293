package sidecar

import (
	"bytes"
	"strings"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/proto"
)

// batchMsgs returns k messages to tp, each with a distinct payload of size
// bytes.
func batchMsgs(k, size int) []*agpv1.Message {
	out := make([]*agpv1.Message, k)
	for i := range out {
		m := msgTo(tp, 0)
		m.Payload = bytes.Repeat([]byte{byte('a' + i%26)}, size)
		m.Header.MessageId = strings.Repeat("x", i+1)
		out[i] = m
	}
	return out
}

// captureLink is a link whose sends are recorded as decoded PeerFrames.
func captureLink(t *testing.T, p *peer, batch bool) (*peerLink, *[]*agpv1.PeerFrame) {
	t.Helper()
	var sent []*agpv1.PeerFrame
	l := &peerLink{p: p, batch: batch, done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{})}
	l.sendMsg = func(v any) error {
		bufs, err := wireCodec{}.Marshal(v)
		if err != nil {
			return err
		}
		var f agpv1.PeerFrame
		err = proto.Unmarshal(bufs.Materialize(), &f)
		bufs.Free()
		if err != nil {
			t.Fatalf("frame does not decode as a PeerFrame: %v", err)
		}
		sent = append(sent, &f)
		return nil
	}
	return l, &sent
}

// sentMessages flattens the messages of the frames sent.
func sentMessages(frames []*agpv1.PeerFrame) []*agpv1.Message {
	var out []*agpv1.Message
	for _, f := range frames {
		if m := f.GetMessage(); m != nil {
			out = append(out, m)
		}
		out = append(out, f.GetBatch().GetMessages()...)
	}
	return out
}

func queueAll(t *testing.T, n *Node, p *peer, msgs []*agpv1.Message) {
	t.Helper()
	for _, m := range msgs {
		w := wm(m)
		if !n.enqueuePeer(p, w, 1) {
			t.Fatal("queue full")
		}
		w.unref()
	}
}

func TestPeerWriterBatches(t *testing.T) {
	cfg := testNodeCfg("a")
	cfg.QueueSize = 256
	n := newTestNode(t, cfg)
	p := n.peerFor("b", "", false)
	msgs := batchMsgs(100, 1500)

	// A peer that did not offer batches gets one message per frame.
	l, sent := captureLink(t, p, false)
	queueAll(t, n, p, msgs[:5])
	for range 5 {
		if !n.sendQueued(l, <-p.q, nil) {
			t.Fatal("send failed")
		}
	}
	if len(*sent) != 5 {
		t.Fatalf("old peer: %d frames for 5 messages", len(*sent))
	}
	for i, f := range *sent {
		if !proto.Equal(f.GetMessage(), msgs[i]) {
			t.Fatalf("old peer: frame %d is %v", i, f)
		}
	}

	// A peer that did: what is queued goes out together, in order, at most
	// maxBatch a frame.
	l, sent = captureLink(t, p, true)
	queueAll(t, n, p, msgs)
	items := make([]peerItem, 0, maxBatch)
	for len(p.q) > 0 {
		if !n.sendQueued(l, <-p.q, items) {
			t.Fatal("send failed")
		}
	}
	if len(*sent) != 2 || len((*sent)[0].GetBatch().GetMessages()) != maxBatch {
		t.Fatalf("100 queued messages went in %d frames (first holds %d)", len(*sent), len((*sent)[0].GetBatch().GetMessages()))
	}
	got := sentMessages(*sent)
	if len(got) != len(msgs) {
		t.Fatalf("sent %d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if !proto.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d: got %v", i, got[i])
		}
	}
	if p.msgsOut.Load() != 105 {
		t.Fatalf("peer msgs out %d, want 105", p.msgsOut.Load())
	}

	// The remote's size limit splits batches; a lone message goes as a
	// plain frame.
	p.maxMsg.Store(uint32(3 * batchEntrySize(wm(msgs[6]))))
	l, sent = captureLink(t, p, true)
	queueAll(t, n, p, msgs[:7])
	if !n.sendQueued(l, <-p.q, items) {
		t.Fatal("send failed")
	}
	var sizes []int
	for _, f := range *sent {
		if f.GetMessage() != nil {
			sizes = append(sizes, 1)
		} else {
			sizes = append(sizes, len(f.GetBatch().GetMessages()))
		}
		if s := proto.Size(f); s > int(p.maxMsg.Load())+8 {
			t.Fatalf("frame of %d bytes for a limit of %d", s, p.maxMsg.Load())
		}
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 || (*sent)[2].GetMessage() == nil {
		t.Fatalf("7 messages, 3 per frame: frames of %v", sizes)
	}
	if !proto.Equal(sentMessages(*sent)[6], msgs[6]) {
		t.Fatal("last message changed")
	}
}

func TestHandlePeerBatch(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	p := n.peerFor("b", "", false)
	l := &peerLink{p: p, dialer: "b", done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{})}
	sub := n.testConn(t)
	n.subscribe(sub, 0, tp)
	msgs := batchMsgs(3, 10)
	bad := msgTo(tp, 0)
	bad.Header.HopLimit = 0
	batch := &agpv1.Batch{Messages: []*agpv1.Message{msgs[0], bad, msgs[1], {}, msgs[2]}}
	if err := n.handlePeerBytes(l, encode(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Batch{Batch: batch}})); err != nil {
		t.Fatal(err)
	}
	got := deliveries(sub)
	if len(got) != 3 {
		t.Fatalf("delivered %d of the batch's 3 good messages", len(got))
	}
	for i, m := range got {
		want := proto.Clone(msgs[i]).(*agpv1.Message)
		want.Header.HopLimit--
		if !proto.Equal(m, want) {
			t.Fatalf("message %d: got %v, want %v", i, m, want)
		}
	}
	if n.dropCount(DropHopLimit) != 1 || n.dropCount(DropMalformed) != 1 {
		t.Fatalf("drops: hop_limit %v malformed %v", n.dropCount(DropHopLimit), n.dropCount(DropMalformed))
	}
	if p.msgsIn.Load() != 5 {
		t.Fatalf("peer msgs in %d, want 5", p.msgsIn.Load())
	}
	// A batch whose inside is not protobuf: counted as malformed, the link
	// goes on.
	if err := n.handlePeerBytes(l, []byte{0x22, 0x03, 0x0a, 0x05, 0x01}); err != nil {
		t.Fatal(err)
	}
	if n.dropCount(DropMalformed) != 2 {
		t.Fatalf("malformed batch counted %v", n.dropCount(DropMalformed))
	}
	// Two batch fields in one frame: decoded as protobuf does (merged).
	b1 := encode(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Batch{Batch: &agpv1.Batch{Messages: msgs[:1]}}})
	b2 := encode(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Batch{Batch: &agpv1.Batch{Messages: msgs[1:2]}}})
	if err := n.handlePeerBytes(l, append(b1, b2...)); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(sub); len(got) != 2 {
		t.Fatalf("merged batches delivered %d, want 2", len(got))
	}
}

// TestPublishNoAckAllocs: a Publish with request id 0 (no Ack wanted)
// allocates only the message (its wmsg, id and destination), no answer.
func TestPublishNoAckAllocs(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	pub, sub := n.testConn(t), n.testConn(t)
	n.subscribe(sub, 0, tp)
	m := msgTo(tp, 0)
	m.Payload = make([]byte, 1024)
	b := encode(m)
	if resp := n.publishBytes(pub, 0, b, 1); resp.GetAck() == nil {
		t.Fatalf("publish answered %v", resp)
	}
	(<-sub.q).w.unref()
	a := testing.AllocsPerRun(200, func() {
		n.publishBytes(pub, 0, b, 1)
		(<-sub.q).w.unref()
	})
	if a > 3 {
		t.Fatalf("%v allocations per publish without Ack, want at most 3", a)
	}
	if got := n.publishBytes(pub, 5, b, 1).GetAck(); got.GetRequestId() != 5 || got.GetLocalDeliveries() != 1 {
		t.Fatalf("ack of request 5: %v", got)
	}
}

// TestPeerWriterKeepsUntriedOnFailure: when a send fails, the messages the
// writer had taken from the queue but not tried go first on the next link,
// in order, as if they had stayed in the queue.
func TestPeerWriterKeepsUntriedOnFailure(t *testing.T) {
	cfg := testNodeCfg("a")
	cfg.QueueSize = 64
	n := newTestNode(t, cfg)
	p := n.peerFor("b", "", false)
	msgs := batchMsgs(7, 100)
	p.maxMsg.Store(uint32(3 * batchEntrySize(wm(msgs[6]))))
	queueAll(t, n, p, msgs)

	failing, _ := captureLink(t, p, true)
	tries := 0
	failing.sendMsg = func(any) error { tries++; return errLinkClosed }
	if n.sendQueued(failing, <-p.q, make([]peerItem, 0, maxBatch)) {
		t.Fatal("a failed send reported success")
	}
	if tries != 1 || p.nleft.Load() != 4 || len(p.q) != 0 {
		t.Fatalf("after the failure: %d tries, %d kept, %d queued; want 1, 4, 0", tries, p.nleft.Load(), len(p.q))
	}

	// The next link's writer sends them before anything queued later.
	later := batchMsgs(9, 50)[8]
	queueAll(t, n, p, []*agpv1.Message{later})
	next, sent := captureLink(t, p, false)
	done := make(chan struct{})
	go func() { n.peerWriter(next); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.q) > 0 || p.nleft.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("writer did not send")
		}
		time.Sleep(time.Millisecond)
	}
	next.close()
	<-done
	got := sentMessages(*sent)
	want := append(msgs[3:7:7], later)
	if len(got) != len(want) {
		t.Fatalf("next link sent %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("message %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// TestBatchNegotiation: a link batches only if the remote's Handshake set
// batch_frames, and this node always offers it.
func TestBatchNegotiation(t *testing.T) {
	n := newTestNode(t, testNodeCfg("a"))
	if !n.handshake().GetBatchFrames() {
		t.Fatal("the handshake does not offer batch frames")
	}
	for _, offered := range []bool{false, true} {
		p := n.peerFor("b", "", false)
		l := &peerLink{p: p, dialer: "b", done: make(chan struct{}), goodbye: make(chan struct{}), writerDone: make(chan struct{})}
		hs := &agpv1.Handshake{NodeId: "b", ProtocolVersion: ProtocolVersion, MaxMessageBytes: 1 << 20, BatchFrames: offered}
		if err := n.attach(p, l, hs, ""); err != nil {
			t.Fatal(err)
		}
		if l.batch != offered {
			t.Fatalf("remote offered batches: %v, link batches: %v", offered, l.batch)
		}
		l.close()
		n.detach(p, l)
	}
}
