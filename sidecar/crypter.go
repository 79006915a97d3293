package sidecar

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
// On the wire a sealed message is an agpv1.Message whose header holds only
// the routing fields (source, destination, fanout, hop_limit) and
// content_type SealedContentType, and whose payload is the sealed original
// message (its whole encoding: header with metadata, message id and content
// type, and payload). RoutingAAD of the outer header is the additional
// data the seal authenticates.
type PeerCrypter interface {
	// SealPeer seals plaintext for one peer node (anycast).
	SealPeer(ctx context.Context, peer string, routing, plaintext []byte) ([]byte, error)
	// SealChannel seals plaintext once for the channel of topic, whose
	// members should include peers (multicast).
	SealChannel(ctx context.Context, topic string, peers []string, routing, plaintext []byte) ([]byte, error)
	// Open opens a message sealed by node from.
	Open(ctx context.Context, from string, routing, sealed []byte) ([]byte, error)
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
	if !n.enqueuePeer(p, w, time.Now().UnixNano()) {
		return fmt.Errorf("sidecar: queue to peer %s full", node)
	}
	return nil
}

func payloadField(b []byte) []byte {
	out := protowire.AppendTag(make([]byte, 0, len(b)+8), 2, protowire.BytesType)
	return protowire.AppendBytes(out, b)
}

// handleSealedPeerMessage opens a peer message (or hands a handshake to the
// crypter) and delivers the original message locally.
func (n *Node) handleSealedPeerMessage(p *peer, mb []byte, now int64) {
	var msg agpv1.Message
	if err := proto.Unmarshal(mb, &msg); err != nil || msg.Header == nil {
		n.dropMalformed(p, now, "", err)
		return
	}
	h := msg.Header
	if isReserved(h.Destination) {
		if err := n.opts.crypter.HandleHandshake(n.ctx, p.nodeID, msg.Payload); err != nil {
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
	if n.subs.lookup(h.Destination) == nil {
		n.m.drop(DropNoSubscribers, 1)
		return
	}
	inner, err := n.opts.crypter.Open(n.ctx, p.nodeID, RoutingAAD(h.Source, h.Destination, h.Fanout, h.HopLimit), msg.Payload)
	if err != nil {
		p.drops.Add(1)
		n.m.drop(DropOpen, 1)
		return
	}
	n.deliverPeerMessage(p, inner, now, []byte(h.Destination))
}

// sealCache holds the channel seal of one forward call, shared by every
// peer of a multicast.
type sealCache struct {
	w    *wmsg
	done bool
}

func (c *sealCache) release() {
	if c.w != nil {
		c.w.unref()
	}
}

// sealFor returns the sealed form of w for peer p (nil if it cannot be
// sealed): anycast seals in the session with p, multicast once in the
// topic's channel for every target.
func (n *Node) sealFor(p *peer, w *wmsg, fan uint32, eps []*agpv1.RouteEndpoint, idx []int, sc *sealCache) *wmsg {
	if fan != 1 && sc.done {
		return sc.w
	}
	var v msgView
	if err := v.parse(w.body); err != nil && !errors.Is(err, errFragmented) {
		return nil
	}
	src, hop := string(v.src), v.hop
	if v.nh == 0 {
		h, _, err := splitMessage(w.body)
		if err != nil || h == nil {
			return nil
		}
		src, hop = h.Source, h.HopLimit
	}
	aad := RoutingAAD(src, w.dest, fan, hop)
	var sealed []byte
	var err error
	if fan == 1 {
		sealed, err = n.opts.crypter.SealPeer(n.ctx, p.nodeID, aad, w.body)
	} else {
		peers := make([]string, 0, len(idx))
		for _, i := range idx {
			// Known addresses first: the crypter's handshakes to peers the
			// loop has not reached yet (invites, Welcomes) need a link.
			n.peerFor(eps[i].NodeId, eps[i].Address, false)
			peers = append(peers, eps[i].NodeId)
		}
		sealed, err = n.opts.crypter.SealChannel(n.ctx, w.dest, peers, aad, w.body)
		sc.done = true
	}
	if err != nil {
		n.log.Warn("message not sealed, not sent to peers", "destination", w.dest, "peer", p.nodeID, "err", err)
		return nil
	}
	hdr := &agpv1.Header{Source: src, Destination: w.dest, Fanout: fan, HopLimit: hop, ContentType: SealedContentType}
	sw, err := buildWmsg(hdr, [][]byte{payloadField(sealed)})
	if err != nil {
		return nil
	}
	if fan == 1 {
		// Anycast reaches one peer: the caller's reference is the only one
		// besides the queue's.
		sc.release()
		sc.w = sw
		return sw
	}
	sc.w = sw
	return sw
}
