package sidecar

import (
	"context"
	"fmt"
	"google.golang.org/protobuf/proto"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// peerItem is one entry of a peer send queue.
type peerItem struct {
	w  *wmsg
	t0 int64
	// seal: the peer writer seals w before sending (see PeerCrypter).
	seal bool
	// n is the number of messages w carries (a sealed batch), 0 for one.
	n int32
}

// count is the number of messages it carries.
func (it peerItem) count() int {
	return max(int(it.n), 1)
}

// peer is a remote node: its connection table entry and send queue outlive
// individual links, so messages queued while a link reconnects are kept.
type peer struct {
	connEntry
	n      *Node
	nodeID string
	static bool
	q      chan peerItem
	// hq holds MLS handshakes: the writer sends them before the messages
	// it seals, so that a message sealed in an epoch never reaches the
	// peer before the Welcome or commit that makes it (see sealItems).
	hq     chan peerItem
	maxMsg atomic.Uint32 // largest message the remote accepts
	addr   atomic.Pointer[string]

	ctx    context.Context // the peer's life; cancelled when it is dropped
	cancel context.CancelFunc

	lmu      sync.Mutex
	link     *peerLink    // current link, or nil
	leftover []peerItem   // taken from q but not tried when a link failed; sent first on the next
	nleft    atomic.Int32 // len(leftover)
	dialing  atomic.Bool  // dial loop running
	kick     chan struct{}
	lastUsed atomic.Int64
	dropLog  atomic.Int64
}

// peerLink is one Peer.Link stream to a peer, inbound or outbound.
type peerLink struct {
	p        *peer
	outbound bool
	dialer   string // node id of the side that dialled
	remote   string
	batch    bool // the remote accepts PeerFrame.batch (set before the writer starts)
	send     func(*agpv1.PeerFrame) error
	sendMsg  func(any) error
	closeSnd func() error // outbound only
	cancel   context.CancelFunc

	done       chan struct{} // closed to end the link
	doneOnce   sync.Once
	goodbye    chan struct{} // closed to send Goodbye, drain and close
	byeOnce    sync.Once
	writerDone chan struct{}
	// sealBuf is the writer's reused buffer for sealed messages.
	sealBuf []byte
}

func (l *peerLink) close() {
	l.doneOnce.Do(func() {
		close(l.done)
		if l.cancel != nil {
			l.cancel()
		}
	})
}

func (l *peerLink) sayGoodbye() { l.byeOnce.Do(func() { close(l.goodbye) }) }

// usable reports whether messages may be queued for p.
func (p *peer) usable() bool {
	s := p.Status()
	return s == StatusUp || s == StatusConnecting
}

func (p *peer) currentLink() *peerLink {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	return p.link
}

func (p *peer) sayGoodbye() {
	if l := p.currentLink(); l != nil {
		p.setStatus(StatusDraining)
		l.sayGoodbye()
	}
}

func (p *peer) address() string {
	if a := p.addr.Load(); a != nil {
		return *a
	}
	return ""
}

func (p *peer) setAddress(a string) {
	if a != "" && p.address() != a {
		v := a // only this branch allocates
		p.addr.Store(&v)
		p.mu.Lock()
		if p.direction != "inbound" || p.remote == "" {
			p.remote = a
		}
		p.mu.Unlock()
	}
}

func (p *peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (n *Node) peerList() []*peer {
	n.peersMu.RLock()
	defer n.peersMu.RUnlock()
	out := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		out = append(out, p)
	}
	return out
}

// peerFor returns the peer for nodeID, creating it if needed. A known
// address starts its dial loop (lazy dialing). It returns nil for an
// invalid node id or when the node is shutting down.
func (n *Node) peerFor(nodeID, addr string, static bool) *peer {
	n.peersMu.RLock()
	p := n.peers[nodeID]
	n.peersMu.RUnlock()
	if p == nil {
		if !validNodeID(nodeID) || nodeID == n.cfg.NodeID {
			return nil
		}
		n.peersMu.Lock()
		if p = n.peers[nodeID]; p == nil {
			if n.ctx.Err() != nil {
				n.peersMu.Unlock()
				return nil
			}
			p = n.newPeer(nodeID, static)
			n.peers[nodeID] = p
			n.conns.add(&p.connEntry)
		}
		n.peersMu.Unlock()
	}
	if addr == "" && static {
		addr = n.staticPeers[nodeID]
	}
	if addr != "" {
		p.setAddress(addr)
	}
	if !p.dialing.Load() && p.address() != "" && !n.draining.Load() && n.ctx.Err() == nil && p.dialing.CompareAndSwap(false, true) {
		// Messages queued while the first dial is in progress are sent
		// once it succeeds.
		p.status.CompareAndSwap(uint32(StatusDown), uint32(StatusConnecting))
		n.wg.Go(func() { n.dialLoop(p) })
	}
	return p
}

func (n *Node) newPeer(nodeID string, static bool) *peer {
	p := &peer{
		n:      n,
		nodeID: nodeID,
		static: static,
		q:      make(chan peerItem, n.cfg.QueueSize),
		hq:     make(chan peerItem, handshakeQueueSize),
		kick:   make(chan struct{}, 1),
	}
	// Down until a link is up or a dial starts: a node known only by id
	// (no address, no inbound link) cannot be reached.
	n.conns.initEntry(&p.connEntry, KindPeer, StatusDown)
	p.ctx, p.cancel = context.WithCancel(n.ctx)
	p.nodeID = nodeID
	p.connEntry.nodeID = nodeID
	p.queueCap = n.cfg.QueueSize
	p.queueDepth = func() int { return len(p.q) }
	p.maxMsg.Store(uint32(n.cfg.MaxMessageBytes))
	p.lastUsed.Store(time.Now().UnixNano())
	return p
}

// attach makes l the current link of p, applying the rules for duplicates:
// two links dialled by the same node id are a duplicate node id; when both
// sides dialled each other, the link dialled by the lower node id is kept.
func (n *Node) attach(p *peer, l *peerLink, hs *agpv1.Handshake, peerIdentity string) error {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	if n.draining.Load() || n.ctx.Err() != nil {
		return errShuttingDown
	}
	if cur := p.link; cur != nil {
		if cur.dialer == l.dialer {
			return &linkRejectError{duplicate: true, nodeID: p.nodeID, remote: cur.remote}
		}
		keep := min(cur.dialer, l.dialer)
		if keep == cur.dialer {
			return &linkRejectError{nodeID: p.nodeID, kept: keep}
		}
		cur.close() // replaced; its own detach sees it is no longer current
	}
	p.link = l
	l.batch = hs.GetBatchFrames()
	p.mu.Lock()
	p.remote = l.remote
	p.identity = peerIdentity
	p.version = hs.GetProtocolVersion()
	p.maxMsg.Store(hs.GetMaxMessageBytes())
	p.connEntry.maxMsg = hs.GetMaxMessageBytes()
	if l.outbound {
		p.direction = "outbound"
	} else {
		p.direction = "inbound"
	}
	p.mu.Unlock()
	if a := hs.GetAdvertisedAddress(); a != "" && p.address() == "" {
		p.addr.Store(&a)
	}
	p.setStatus(StatusUp)
	p.touch(time.Now().UnixNano())
	return nil
}

// detach removes l from p if it is still current.
func (n *Node) detach(p *peer, l *peerLink) {
	p.lmu.Lock()
	cur := p.link == l
	if cur {
		p.link = nil
		p.setStatus(StatusDown)
	}
	p.lmu.Unlock()
	if cur {
		p.wake()
	}
}

func (n *Node) hasLink(p *peer) bool { return p.currentLink() != nil }

// runLink serves an attached link: a writer goroutine sends p's queue,
// recv reads frames until the link ends.
func (n *Node) runLink(l *peerLink, recv func(*rawFrame) error) error {
	p := l.p
	n.log.Info("peer link up", "peer", p.nodeID, "remote", l.remote, "outbound", l.outbound)
	go n.peerWriter(l)
	// The reader runs in its own goroutine so that closing the link (on
	// replacement, Goodbye or idle drop) never waits for a Recv.
	readErr := make(chan error, 1)
	n.wg.Go(func() { readErr <- n.peerReader(l, recv) })
	var err error
	select {
	case err = <-readErr:
	case <-l.done:
		err = errLinkClosed
	}
	l.close()
	n.detach(p, l)
	<-l.writerDone
	n.log.Info("peer link down", "peer", p.nodeID, "remote", l.remote, "err", err)
	return err
}

func (n *Node) peerReader(l *peerLink, recv func(*rawFrame) error) error {
	var raw rawFrame
	for {
		if err := recv(&raw); err != nil {
			return err
		}
		err := n.handlePeerBytes(l, raw.b)
		raw.release()
		if err != nil {
			return err
		}
	}
}

// handlePeerBytes handles one encoded PeerFrame from l. A Message takes the
// wire-form fast path. It returns an error only when the link must end.
func (n *Node) handlePeerBytes(l *peerLink, b []byte) error {
	p := l.p
	kind, val, once, _, err := scanOneof(b, 1, 4)
	if err == nil && once {
		switch kind {
		case 2:
			n.handlePeerMessage(p, val)
			return nil
		case 4:
			n.handlePeerBatch(p, val)
			return nil
		}
	}
	var f agpv1.PeerFrame
	if err := proto.Unmarshal(b, &f); err != nil {
		p.drops.Add(1)
		n.m.drop(DropMalformed, 1)
		return nil
	}
	switch k := f.GetKind().(type) {
	case *agpv1.PeerFrame_Message:
		hdr, rest, err := wmsgFromProto(k.Message)
		if err != nil || hdr == nil {
			p.drops.Add(1)
			n.m.drop(DropMalformed, 1)
			return nil
		}
		w, err := buildWmsg(hdr, rest)
		if err != nil {
			n.m.drop(DropMalformed, 1)
			return nil
		}
		n.handlePeerMessage(p, w.body)
	case *agpv1.PeerFrame_Batch:
		for _, m := range k.Batch.GetMessages() {
			b, err := proto.Marshal(m)
			if err != nil {
				p.drops.Add(1)
				n.m.drop(DropMalformed, 1)
				continue
			}
			n.handlePeerMessage(p, b)
		}
	case *agpv1.PeerFrame_Goodbye:
		n.log.Info("peer says goodbye", "peer", p.nodeID, "reason", k.Goodbye.GetReason())
		p.lmu.Lock()
		if p.link == l {
			p.setStatus(StatusDraining)
		}
		p.lmu.Unlock()
	case *agpv1.PeerFrame_Handshake:
		return errSecondHandshake
	default:
		p.drops.Add(1)
		n.m.drop(DropMalformed, 1)
	}
	return nil
}

// peerWriter sends p's queue on l until l ends; on Goodbye it sends the
// Goodbye frame, drains the queue and closes the link. When the remote
// accepts batches, the messages already queued when the writer wakes go out
// in as few frames as the remote's size limit allows (at most maxBatch
// each): nothing waits for a batch to fill.
func (n *Node) peerWriter(l *peerLink) {
	defer close(l.writerDone)
	p := l.p
	var items []peerItem
	if l.batch {
		items = make([]peerItem, 0, maxBatch)
	}
	for {
		if p.nleft.Load() > 0 && !n.sendItems(l, p.takeLeftover()) {
			l.close()
			return
		}
		select {
		case it := <-p.q:
			if !n.sendQueued(l, it, items) {
				l.close()
				return
			}
		case it := <-p.hq:
			if !n.sendRaw(l, p.drainHandshakes([]peerItem{it})) {
				l.close()
				return
			}
		case <-l.goodbye:
			_ = l.send(&agpv1.PeerFrame{Kind: &agpv1.PeerFrame_Goodbye{Goodbye: &agpv1.Goodbye{Reason: "node shutting down"}}})
			for drained := false; !drained; {
				select {
				case it := <-p.q:
					if !n.sendQueued(l, it, items) {
						drained = true
					}
				case <-l.done:
					drained = true
				default:
					drained = true
				}
			}
			if l.outbound {
				_ = l.closeSnd() // the remote ends the stream; our reader sees EOF
			} else {
				l.close()
			}
			return
		case <-l.done:
			return
		}
	}
}

// maxBatch bounds the messages in one PeerFrame.batch.
const maxBatch = 64

// sendQueued sends it and, on a link that takes batches, whatever else is
// queued for the peer right now (up to maxBatch messages in all). items is
// the writer's scratch slice. It reports false when the link failed; the
// messages it took from the queue are then dropped.
func (n *Node) sendQueued(l *peerLink, it peerItem, items []peerItem) bool {
	if !l.batch {
		if it.seal {
			return n.sendItems(l, []peerItem{it})
		}
		return n.sendPeer(l, it)
	}
	items = append(items[:0], it)
drain:
	for len(items) < maxBatch {
		select {
		case it := <-l.p.q:
			items = append(items, it)
		default:
			break drain
		}
	}
	return n.sendItems(l, items)
}

// sendItems sends items in as few frames as the remote's size limit
// allows. If a send fails, the items not yet tried are kept for the next
// link (as they would have been had they stayed in the queue).
func (n *Node) sendItems(l *peerLink, items []peerItem) bool {
	if n.opts.crypter != nil {
		items = n.sealItems(l, items)
		// Every handshake queued before the seals took their group's lock
		// is in hq now: it goes first. (One queued later may overtake a
		// message sealed before it: a receiver opens messages of the
		// previous epoch too.)
		if len(l.p.hq) > 0 {
			items = append(l.p.drainHandshakes(nil), items...)
		}
	}
	return n.sendRaw(l, items)
}

// handshakeQueueSize bounds a peer's queue of MLS handshakes; a handshake
// that finds it full is dropped (the crypter resends what matters).
const handshakeQueueSize = 1024

// drainHandshakes appends the handshakes queued for p to out.
func (p *peer) drainHandshakes(out []peerItem) []peerItem {
	for {
		select {
		case it := <-p.hq:
			out = append(out, it)
		default:
			return out
		}
	}
}

// sendRaw is sendItems for items that are ready to go.
func (n *Node) sendRaw(l *peerLink, items []peerItem) bool {
	if !l.batch {
		for i, it := range items {
			if !n.sendPeer(l, it) {
				l.p.keepLeftover(items[i+1:])
				return false
			}
		}
		return true
	}
	limit := int(l.p.maxMsg.Load())
	if limit == 0 {
		limit = n.cfg.MaxMessageBytes
	}
	for len(items) > 0 {
		k, size := 1, batchEntrySize(items[0].w)
		for k < len(items) {
			s := batchEntrySize(items[k].w)
			if size+s > limit {
				break
			}
			size += s
			k++
		}
		var ok bool
		if k == 1 {
			ok = n.sendPeer(l, items[0])
		} else {
			ok = n.sendBatch(l, items[:k], size)
		}
		if !ok {
			l.p.keepLeftover(items[k:])
			return false
		}
		clear(items[:k])
		items = items[k:]
	}
	return true
}

// keepLeftover keeps items for the next link of p.
func (p *peer) keepLeftover(items []peerItem) {
	if len(items) == 0 {
		return
	}
	p.lmu.Lock()
	p.leftover = append(p.leftover, items...)
	p.nleft.Store(int32(len(p.leftover)))
	p.lmu.Unlock()
}

// takeLeftover returns and clears the items kept by keepLeftover.
func (p *peer) takeLeftover() []peerItem {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	left := p.leftover
	p.leftover = nil
	p.nleft.Store(0)
	return left
}

// sendBatch sends items, whose Batch encoding is size bytes, in one frame.
func (n *Node) sendBatch(l *peerLink, items []peerItem, size int) bool {
	if err := l.sendMsg(newPeerBatchFrame(items, size)); err != nil {
		return false
	}
	now := time.Now().UnixNano()
	msgs := 0
	for _, it := range items {
		l.p.countOut(it.w.size(), now)
		n.m.latency.Observe(float64(now-it.t0) / 1e9)
		msgs += it.count()
	}
	n.m.msgsOut[KindPeer].Add(float64(msgs))
	return true
}

// handlePeerBatch handles the value of a PeerFrame.batch: each
// Batch.messages entry as if it had arrived in its own frame.
func (n *Node) handlePeerBatch(p *peer, b []byte) {
	for len(b) > 0 {
		num, typ, tn, vn, err := consumeField(b)
		if err != nil {
			n.dropMalformed(p, time.Now().UnixNano(), "", fmt.Errorf("batch: %w", err))
			return
		}
		if num == 1 && typ == protowire.BytesType {
			mb, _ := protowire.ConsumeBytes(b[tn:])
			n.handlePeerMessage(p, mb)
		}
		// Any other field is unknown to Batch; protobuf skips it too.
		b = b[tn+vn:]
	}
}

func (n *Node) sendPeer(l *peerLink, it peerItem) bool {
	if err := l.sendMsg((*peerMsgFrame)(it.w)); err != nil {
		return false
	}
	now := time.Now().UnixNano()
	l.p.countOut(it.w.size(), now)
	n.m.msgsOut[KindPeer].Add(float64(it.count()))
	n.m.latency.Observe(float64(now-it.t0) / 1e9)
	return true
}

func (n *Node) handshake() *agpv1.Handshake {
	return &agpv1.Handshake{
		NodeId:            n.cfg.NodeID,
		ProtocolVersion:   ProtocolVersion,
		AdvertisedAddress: n.AdvertiseAddress(),
		MaxMessageBytes:   uint32(n.cfg.MaxMessageBytes),
		BatchFrames:       true,
	}
}

// gcLoop drops learnt (non-static) peers that have been idle for
// PeerIdleTimeout.
func (n *Node) gcLoop() {
	every := max(n.cfg.PeerIdleTimeout/4, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			idle := now.Add(-n.cfg.PeerIdleTimeout).UnixNano()
			n.peersMu.Lock()
			for id, p := range n.peers {
				if p.static || p.lastUsed.Load() > idle || p.lastActivity.Load() > idle || len(p.q) > 0 || len(p.hq) > 0 || p.nleft.Load() > 0 {
					continue
				}
				if l := p.currentLink(); l != nil && !l.outbound {
					continue // the remote dialled; it decides when the link ends
				}
				delete(n.peers, id)
				n.conns.remove(p.id)
				p.cancel()
				if l := p.currentLink(); l != nil {
					l.close()
				}
				n.log.Info("dropped idle peer", "peer", id)
			}
			n.peersMu.Unlock()
		}
	}
}
