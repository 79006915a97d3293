package sidecar

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/names"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// MLSTopicPrefix is the reserved organisation prefix of MLS handshake
// traffic between sidecars. Agents may not publish or subscribe to names
// under it; a message under it that arrives from a peer goes to the
// PeerCrypter, never to an agent.
const MLSTopicPrefix = "agwmls."

// HandshakeDestination is the destination of handshake messages.
const HandshakeDestination = MLSTopicPrefix + "sidecar/mls/handshake"

// SealedContentType marks a peer message whose payload is sealed by the
// PeerCrypter (the original message, header and payload, in ciphertext).
const SealedContentType = "application/agp-mls"

// PeerCrypter seals every message before it goes to peer nodes and opens it
// on arrival (end-to-end encryption between sidecars, see sidecar/e2ee).
// With a PeerCrypter set, the node sends no plaintext to peers and refuses
// every unsealed message from them.
//
// Sealing happens in two steps. The publisher's forward call prepares
// (PreparePeer, PrepareChannel): it may wait while a session or channel is
// set up, since the handshakes that set it up leave through the peer
// writers. The peer writer then seals (SealNow), which never waits: it
// seals the messages queued for one peer in one MLS message per run of
// messages of one group (the session with that peer for anycast, a topic's
// channel for multicast), so that one signature covers many messages.
//
// On the wire a sealed message is an agpv1.Message whose header holds only
// routing fields (destination: the messages' topic, or the first message's
// destination in a session; fanout 1 for a session, the messages' fanout
// for a channel; hop_limit 1) and content_type SealedContentType, and whose
// payload is the sealed encoding of an agpv1.Batch of the original
// messages (each one's whole encoding: header with source, metadata,
// message id, content type and hop limit, and payload). RoutingAAD of the
// outer header is the additional data the seal authenticates. In a channel
// batch every message's destination is the outer destination.
type PeerCrypter interface {
	// PreparePeer returns once messages for peer can be sealed in their
	// session (anycast).
	PreparePeer(ctx context.Context, peer string) error
	// PrepareChannel returns once messages can be sealed in the channel of
	// topic for peers, the nodes they go to (multicast).
	PrepareChannel(ctx context.Context, topic string, peers []string) error
	// SealNow seals the concatenation of parts, which holds n messages, in
	// the session with peer (topic "") or in the channel of topic, without
	// waiting, appending the sealed message to dst (the writer's reused
	// buffer, whose spare capacity does not overlap parts).
	SealNow(ctx context.Context, peer, topic string, routing []byte, parts [][]byte, n int, dst []byte) ([]byte, error)
	// SealOverhead is the most bytes a seal adds to its plaintext.
	SealOverhead() int
	// OpenInPlace opens a message sealed by node from; it may decrypt in
	// sealed's own bytes, which the node gives up, and the result may
	// alias them.
	OpenInPlace(ctx context.Context, from string, routing, sealed []byte) ([]byte, error)
	// HandleHandshake takes a handshake message that node from sent.
	HandleHandshake(ctx context.Context, from string, msg []byte) error
	// BindTransport gives the crypter the function that sends a handshake
	// message to a peer node; New calls it once.
	BindTransport(send func(ctx context.Context, node string, msg []byte) error)
}

// WithPeerCrypter seals every message between sidecars (see PeerCrypter).
func WithPeerCrypter(c PeerCrypter) Option { return func(o *options) { o.crypter = c } }

// RoutingAAD encodes the routing fields of a message's header, the
// additional data of its seal.
func RoutingAAD(source, destination string, fanout, hopLimit uint32) []byte {
	b := make([]byte, 0, 24+len(source)+len(destination))
	b = append(b, "agp-routing-v1"...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(source)))
	b = append(b, source...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(destination)))
	b = append(b, destination...)
	b = binary.BigEndian.AppendUint32(b, fanout)
	return binary.BigEndian.AppendUint32(b, hopLimit)
}

var mlsPrefix = []byte(MLSTopicPrefix)

// isReserved reports whether agents may not use name.
func isReserved(name string) bool { return strings.HasPrefix(name, MLSTopicPrefix) }

// addressUser is a PeerCrypter that passes peer addresses along with its
// handshakes: a sidecar that only subscribes has no route to the other
// members of a channel, so an invitation to a committer it has no link
// with carries the committer's address.
type addressUser interface {
	BindAddresses(lookup func(node string) string, learn func(node, addr string))
}

// peerAddress is the address this node knows for node ("" if none).
func (n *Node) peerAddress(node string) string {
	n.peersMu.RLock()
	p := n.peers[node]
	n.peersMu.RUnlock()
	if p == nil {
		return n.staticPeers[node]
	}
	return p.address()
}

// learnPeerAddress takes an address for node from a peer's handshake: it
// is used only while no other address is known (a static peer, a route or
// the node's own link handshake) and the link it leads to is
// authenticated like any other.
func (n *Node) learnPeerAddress(node, addr string) {
	if addr == "" || node == n.cfg.NodeID || !validNodeID(node) || n.peerAddress(node) != "" {
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return
	}
	n.peerFor(node, addr, false)
}

// sendHandshake queues a handshake message for peer node.
func (n *Node) sendHandshake(ctx context.Context, node string, msg []byte) error {
	p := n.peerFor(node, n.staticPeers[node], false)
	if p == nil {
		return fmt.Errorf("sidecar: no peer %q", node)
	}
	hdr := &agpv1.Header{Destination: HandshakeDestination, HopLimit: 1, ContentType: "application/agp-mls-handshake"}
	w, err := buildWmsg(hdr, [][]byte{payloadField(msg)})
	if err != nil {
		return err
	}
	defer w.unref()
	if max := p.maxMsg.Load(); max != 0 && w.size() > int(max) {
		return fmt.Errorf("sidecar: handshake of %d bytes above peer %s's limit", w.size(), node)
	}
	w.ref()
	select {
	case p.hq <- peerItem{w: w, t0: time.Now().UnixNano()}:
		return nil
	default:
		w.unref()
		n.m.drop(DropPeerQueueFull, 1)
		return fmt.Errorf("sidecar: handshake queue to peer %s full", node)
	}
}

// payloadPrefix is the tag and length of a Message.payload of n bytes.
func payloadPrefix(n int) []byte {
	b := protowire.AppendTag(make([]byte, 0, 12), 2, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

func payloadField(b []byte) []byte { return append(payloadPrefix(len(b)), b...) }

// handleSealedPeerMessage opens a peer message (or hands a handshake to the
// crypter) and delivers the original message locally.
func (n *Node) handleSealedPeerMessage(p *peer, mb []byte, now int64) {
	h, payload, err := splitSealed(mb)
	if err != nil {
		n.dropMalformed(p, now, "", err)
		return
	}
	if isReserved(h.Destination) {
		if err := n.opts.crypter.HandleHandshake(n.ctx, p.nodeID, payload); err != nil {
			n.log.Debug("mls handshake refused", "peer", p.nodeID, "err", err)
		}
		return
	}
	if h.ContentType != SealedContentType {
		p.drops.Add(1)
		n.m.drop(DropUnsealed, 1)
		if logEvery(&p.dropLog, now, 5*time.Second) {
			n.log.Warn("dropping unsealed message from peer", "peer", p.nodeID, "destination", h.Destination, "security_event", "unsealed")
		}
		return
	}
	if !names.Valid(h.Destination) || (h.Source != "" && !names.Valid(h.Source)) {
		n.dropMalformed(p, now, h.Destination, errors.New("invalid routing header"))
		return
	}
	if h.HopLimit == 0 {
		n.m.drop(DropHopLimit, 1)
		return
	}
	// A channel batch holds messages to its destination only; a session's
	// may hold several destinations.
	var wantDest []byte
	if h.Fanout != 1 {
		if n.subs.lookup(h.Destination) == nil {
			n.m.drop(DropNoSubscribers, 1)
			return
		}
		wantDest = []byte(h.Destination)
	}
	inner, err := n.opts.crypter.OpenInPlace(n.ctx, p.nodeID, RoutingAAD(h.Source, h.Destination, h.Fanout, h.HopLimit), payload)
	if err != nil {
		p.drops.Add(1)
		n.m.drop(DropOpen, 1)
		return
	}
	n.deliverOpened(p, inner, now, wantDest)
}

// splitSealed decodes the header of a sealed or handshake message and
// returns its payload without copying it (the payload is the bulk of it).
func splitSealed(mb []byte) (*agpv1.Header, []byte, error) {
	var h *agpv1.Header
	var payload []byte
	for b := mb; len(b) > 0; {
		num, typ, tn, vn, err := consumeField(b)
		if err != nil {
			return nil, nil, err
		}
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			v, _ := protowire.ConsumeBytes(b[tn:])
			if num == 1 {
				// Fields of a repeated message field merge, as protobuf does.
				if h == nil {
					h = new(agpv1.Header)
				}
				if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, h); err != nil {
					return nil, nil, err
				}
			} else {
				payload = v
			}
		}
		b = b[tn+vn:]
	}
	if h == nil {
		return nil, nil, errors.New("message without header")
	}
	return h, payload, nil
}

// deliverOpened delivers each message of an opened batch (an agpv1.Batch
// encoding) locally; with wantDest set, each message's destination must be
// it.
func (n *Node) deliverOpened(p *peer, b []byte, now int64, wantDest []byte) {
	for len(b) > 0 {
		num, typ, tn, vn, err := consumeField(b)
		if err != nil {
			n.dropMalformed(p, now, string(wantDest), fmt.Errorf("sealed batch: %w", err))
			return
		}
		if num == 1 && typ == protowire.BytesType {
			mb, _ := protowire.ConsumeBytes(b[tn:])
			n.deliverPeerMessage(p, mb, now, wantDest)
		}
		b = b[tn+vn:]
	}
}

// prepCache remembers the channel preparation of one forward call, shared
// by every peer of a multicast.
type prepCache struct {
	done, ok bool
}

// prepareFor prepares w's seal for peer p (see PeerCrypter): anycast in
// the session with p, multicast once in the topic's channel for every
// target. It reports whether w may be queued for p.
func (n *Node) prepareFor(p *peer, w *wmsg, fan uint32, eps []*agpv1.RouteEndpoint, idx []int, pc *prepCache) bool {
	if fan == 1 {
		if err := n.opts.crypter.PreparePeer(n.ctx, p.nodeID); err != nil {
			n.log.Warn("no MLS session with peer, message not sent to it", "destination", w.dest, "peer", p.nodeID, "err", err)
			return false
		}
		return true
	}
	if pc.done {
		return pc.ok
	}
	pc.done = true
	peers := make([]string, 0, len(idx))
	for _, i := range idx {
		// Known addresses first: the crypter's handshakes to peers the
		// loop has not reached yet (invites, Welcomes) need a link.
		n.peerFor(eps[i].NodeId, eps[i].Address, false)
		peers = append(peers, eps[i].NodeId)
	}
	if err := n.opts.crypter.PrepareChannel(n.ctx, w.dest, peers); err != nil {
		n.log.Warn("MLS channel not ready, message not sent to peers", "destination", w.dest, "err", err)
		return false
	}
	pc.ok = true
	return true
}

// sealItems seals, in place, the messages of items marked for sealing: one
// sealed message for each run of consecutive messages of one group (the
// session with the link's peer for anycast; the topic's channel for
// multicast), as large as the peer's size limit allows. Handshakes and
// already sealed items (left over from a failed link) are kept as they
// are, in order. A run that cannot be sealed is dropped and counted.
func (n *Node) sealItems(l *peerLink, items []peerItem) []peerItem {
	p := l.p
	limit := int(p.maxMsg.Load())
	if limit == 0 {
		limit = n.cfg.MaxMessageBytes
	}
	room := limit - n.opts.crypter.SealOverhead()
	out := items[:0]
	for i := 0; i < len(items); {
		it := items[i]
		if !it.seal {
			out = append(out, it)
			i++
			continue
		}
		fan, dest := it.w.fanout, it.w.dest
		size := batchEntrySize(it.w)
		j := i + 1
		for ; j < len(items); j++ {
			nx := items[j]
			if !nx.seal || (nx.w.fanout == 1) != (fan == 1) || (fan != 1 && nx.w.dest != dest) {
				break
			}
			s := batchEntrySize(nx.w)
			if size+s > room {
				break
			}
			size += s
		}
		sw := n.sealRun(l, items[i:j])
		for k := i; k < j; k++ {
			items[k].w.unref()
		}
		if sw != nil {
			// len(out) <= i: the run is read before its place is reused.
			out = append(out, peerItem{w: sw, t0: it.t0, n: int32(j - i)})
		}
		i = j
	}
	clear(items[len(out):])
	return out
}

// sealRun seals run into one message for l's peer; nil (counted, logged)
// if it cannot. The messages are sealed where they lie (no Batch is built)
// into l's reused buffer.
func (n *Node) sealRun(l *peerLink, run []peerItem) *wmsg {
	p := l.p
	first := run[0].w
	fan, topic, peerID := first.fanout, first.dest, ""
	if fan == 1 {
		topic, peerID = "", p.nodeID
	}
	sw, err := n.sealBatch(len(run), func(i int) []byte { return run[i].w.body }, peerID, topic, first.dest, fan, &l.sealBuf)
	if err != nil {
		p.drops.Add(uint64(len(run)))
		n.m.drop(DropSealError, len(run))
		if logEvery(&p.dropLog, time.Now().UnixNano(), 5*time.Second) {
			n.log.Warn("messages not sealed, not sent to peer", "peer", p.nodeID, "destination", first.dest, "messages", len(run), "err", err)
		}
		return nil
	}
	return sw
}

// sealBatch seals k message bodies, body(0) .. body(k-1), where they lie
// in one MLS message to dest, as the plaintext agpv1.Batch: in the session
// with peerID when topic is "", else in topic's channel; fan is the outer
// header's fanout. The sealed bytes are built in *buf, kept for the next
// seal unless it grew beyond maxSealBuf.
func (n *Node) sealBatch(k int, body func(int) []byte, peerID, topic, dest string, fan uint32, buf *[]byte) (*wmsg, error) {
	pre := make([]byte, 0, k*(1+binary10))
	parts := make([][]byte, 0, 2*k)
	for i := range k {
		b := body(i)
		j := len(pre)
		pre = protowire.AppendTag(pre, 1, protowire.BytesType)
		pre = protowire.AppendVarint(pre, uint64(len(b)))
		parts = append(parts, pre[j:len(pre):len(pre)], b)
	}
	hdr := &agpv1.Header{Destination: dest, Fanout: fan, HopLimit: 1, ContentType: SealedContentType}
	sealed, err := n.opts.crypter.SealNow(n.ctx, peerID, topic, RoutingAAD("", dest, fan, 1), parts, k, (*buf)[:0])
	if err != nil {
		return nil, err
	}
	if cap(sealed) <= maxSealBuf {
		*buf = sealed[:0]
	}
	return buildWmsg(hdr, [][]byte{payloadPrefix(len(sealed)), sealed})
}

// maxSealBuf bounds the seal buffer a peer writer keeps between seals.
const maxSealBuf = 1 << 20
