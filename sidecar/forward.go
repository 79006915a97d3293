package sidecar

import (
	"bytes"
	"errors"
	"slices"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/names"
)

// topicState is per published topic: the remote round-robin cursor. Its
// first creation calls RouteSource.Watch.
type topicState struct {
	rr uint32Counter
}

func (n *Node) topicState(topic string) *topicState {
	if v, ok := n.watched.Load(topic); ok {
		return v.(*topicState)
	}
	v, loaded := n.watched.LoadOrStore(topic, &topicState{})
	if !loaded {
		n.routes.Watch(topic)
	}
	return v.(*topicState)
}

// forward sends a message published by local agent from to its targets and
// returns how many local connections and peer nodes took it.
func (n *Node) forward(w *wmsg, from *agentConn, t0 int64) (local, remote uint32) {
	size := w.size()
	fan := w.fanout
	ts := n.topicState(w.dest)
	local = n.deliverLocal(w, from, fan, t0)
	if fan != 0 && local >= fan {
		return local, 0
	}
	eps := n.routes.Endpoints(w.dest)
	if len(eps) == 0 {
		if local == 0 {
			n.m.drop(DropNoSubscribers, 1)
		}
		return local, 0
	}
	// Round robin over the eligible endpoints only, so that the node's own
	// id or withdrawn entries do not skew it.
	var buf [16]int
	idx := buf[:0]
	for i, ep := range eps {
		if ep != nil && ep.NodeId != n.cfg.NodeID && ep.Status != agpv1.RouteEndpoint_STATUS_PENDING_WITHDRAWAL && validNodeID(ep.NodeId) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		if local == 0 {
			n.m.drop(DropNoSubscribers, 1)
		}
		return local, 0
	}
	start := 0
	if fan != 0 {
		start = int(ts.rr.next() % uint32(len(idx)))
	}
	want := uint32(0)
	if fan != 0 {
		want = fan - local
	}
	skippedDown := 0
	candidates := 0
	var pc prepCache
	// A multicast with MLS goes to its channel's sealer, once for all its
	// peers (chanseal.go).
	var sealTo []*peer
	for i := range idx {
		ep := eps[idx[(start+i)%len(idx)]]
		p := n.peerFor(ep.NodeId, ep.Address, false)
		if p == nil {
			continue
		}
		candidates++
		p.lastUsed.Store(t0)
		if !p.usable() {
			if fan == 0 {
				p.drops.Add(1)
				n.m.drop(DropPeerDown, 1)
			} else {
				skippedDown++
			}
			continue
		}
		if max := p.maxMsg.Load(); max != 0 && size > int(max) {
			p.drops.Add(1)
			n.m.drop(DropTooLarge, 1)
			continue
		}
		it := peerItem{w: w, t0: t0}
		if n.opts.crypter != nil {
			// Sealed in a batch by a sealer (chanseal.go).
			if max := p.maxMsg.Load(); max != 0 && batchEntrySize(w)+n.opts.crypter.SealOverhead() > int(max) {
				p.drops.Add(1)
				n.m.drop(DropTooLarge, 1)
				continue
			}
			if !n.prepareFor(p, w, fan, eps, idx, &pc) {
				p.drops.Add(1)
				n.m.drop(DropSealError, 1)
				continue
			}
			if fan != 1 {
				sealTo = append(sealTo, p)
				remote++
				if want != 0 && remote >= want {
					break
				}
				continue
			}
			// Anycast: sealed by the session's sealer.
			if n.queueSeal(w, t0, nil, p) {
				remote++
				if want != 0 && remote >= want {
					break
				}
			}
			continue
		}
		if n.enqueueItem(p, it) {
			remote++
			if want != 0 && remote >= want {
				break
			}
		}
	}
	if len(sealTo) > 0 && !n.queueSeal(w, t0, sealTo, nil) {
		remote -= uint32(len(sealTo))
	}
	if fan != 0 && local+remote == 0 && skippedDown > 0 {
		n.m.drop(DropPeerDown, 1)
	}
	if local == 0 && candidates == 0 {
		n.m.drop(DropNoSubscribers, 1)
	}
	return local, remote
}

// deliverLocal hands msg to local subscribers of its destination, except
// exclude, applying fanout (0 = all). It returns the number that took it.
func (n *Node) deliverLocal(w *wmsg, exclude *agentConn, fan uint32, t0 int64) uint32 {
	return n.deliverTo(n.subs.lookup(w.dest), w, exclude, fan, t0)
}

// deliverTo is deliverLocal for a looked-up topic entry (nil: none).
func (n *Node) deliverTo(e *topicEntry, w *wmsg, exclude *agentConn, fan uint32, t0 int64) uint32 {
	if e == nil {
		return 0
	}
	conns := e.load()
	var delivered uint32
	if fan == 0 {
		for _, c := range conns {
			if c != exclude && n.offerAgent(c, w, t0) {
				delivered++
			}
		}
		return delivered
	}
	// Round robin over the subscribers other than the publisher.
	m, xi := len(conns), -1
	if exclude != nil {
		if xi = slices.Index(conns, exclude); xi >= 0 {
			m--
		}
	}
	if m <= 0 {
		return 0
	}
	start := int(e.rr.Add(1)-1) % m
	for i := 0; i < m && delivered < fan; i++ {
		j := (start + i) % m
		if xi >= 0 && j >= xi {
			j++
		}
		if n.offerAgent(conns[j], w, t0) {
			delivered++
		}
	}
	return delivered
}

// enqueuePeer queues msg for peer p, waiting at most PeerQueueWait for room.
func (n *Node) enqueuePeer(p *peer, w *wmsg, t0 int64) bool {
	return n.enqueueItem(p, peerItem{w: w, t0: t0})
}

// enqueueItem is enqueuePeer for a prepared item.
func (n *Node) enqueueItem(p *peer, it peerItem) bool {
	w := it.w
	w.ref()
	select {
	case p.q <- it:
		return true
	default:
	}
	if wait := n.cfg.PeerQueueWait; wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case p.q <- it:
			return true
		case <-t.C:
		case <-n.ctx.Done():
		}
	}
	w.unref()
	p.drops.Add(1)
	n.m.drop(DropPeerQueueFull, 1)
	if logEvery(&p.dropLog, time.Now().UnixNano(), 5*time.Second) {
		n.log.Warn("peer queue full, dropping messages to it", "peer", p.nodeID, "queue_size", cap(p.q), "drops_total", p.drops.Load())
	}
	return false
}

// handlePeerMessage delivers a message (encoded in mb) that arrived from
// peer p to local subscribers only (one-hop rule), after checking and
// decrementing its hop limit. The message is not decoded (see msgView).
func (n *Node) handlePeerMessage(p *peer, mb []byte) {
	now := time.Now().UnixNano()
	p.countIn(len(mb), now)
	n.m.msgsIn[KindPeer].Inc()
	if n.opts.crypter != nil {
		n.handleSealedPeerMessage(p, mb, now)
		return
	}
	n.deliverPeerMessage(p, mb, now, nil)
}

// deliverPeerMessage is handlePeerMessage for a plaintext message; with
// wantDest set, the message's destination must be it.
func (n *Node) deliverPeerMessage(p *peer, mb []byte, now int64, wantDest []byte) {
	var v msgView
	err := v.parse(mb)
	if errors.Is(err, errFragmented) {
		n.handlePeerMessageSlow(p, mb, now, wantDest)
		return
	}
	if err != nil || v.nh == 0 || !names.ValidBytes(v.dest) || (len(v.src) > 0 && !names.ValidBytes(v.src)) ||
		(wantDest != nil && !bytes.Equal(v.dest, wantDest)) {
		n.dropMalformed(p, now, string(v.dest), err)
		return
	}
	if v.hop == 0 {
		n.m.drop(DropHopLimit, 1)
		return
	}
	e := n.subs.lookupBytes(v.dest)
	if e == nil {
		n.m.drop(DropNoSubscribers, 1)
		return
	}
	w := v.build(v.hop - 1)
	if n.deliverTo(e, w, nil, v.fanout, now) == 0 {
		n.m.drop(DropNoSubscribers, 1)
	}
	w.unref()
}

func (n *Node) dropMalformed(p *peer, now int64, dest string, err error) {
	p.drops.Add(1)
	n.m.drop(DropMalformed, 1)
	if logEvery(&p.dropLog, now, 5*time.Second) {
		n.log.Warn("dropping malformed message from peer", "peer", p.nodeID, "destination", dest, "err", err)
	}
}

// handlePeerMessageSlow decodes the header, for messages too fragmented
// for msgView.
func (n *Node) handlePeerMessageSlow(p *peer, mb []byte, now int64, wantDest []byte) {
	h, rest, err := splitMessage(mb)
	if err != nil || h == nil || !names.Valid(h.Destination) || (h.Source != "" && !names.Valid(h.Source)) ||
		(wantDest != nil && h.Destination != string(wantDest)) {
		n.dropMalformed(p, now, h.GetDestination(), err)
		return
	}
	if h.HopLimit == 0 {
		n.m.drop(DropHopLimit, 1)
		return
	}
	if n.subs.lookup(h.Destination) == nil {
		n.m.drop(DropNoSubscribers, 1)
		return
	}
	h.HopLimit--
	w, err := buildWmsg(h, rest)
	if err != nil {
		n.m.drop(DropMalformed, 1)
		return
	}
	if n.deliverLocal(w, nil, h.Fanout, now) == 0 {
		n.m.drop(DropNoSubscribers, 1)
	}
	w.unref()
}
