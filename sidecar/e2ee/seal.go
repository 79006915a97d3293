package e2ee

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agwproject/agw/mls"
)

// SealPeer encrypts plaintext for node peer in their point-to-point
// session, setting it up the first time (PreparePeer, then SealNow).
// routing is the encoded routing header that travels outside the
// ciphertext: its SHA-256 is the message's authenticated data, so Open
// refuses it with another header.
func (m *Manager) SealPeer(ctx context.Context, peer string, routing, plaintext []byte) ([]byte, error) {
	if err := m.PreparePeer(ctx, peer); err != nil {
		return nil, err
	}
	return m.SealNow(ctx, peer, "", routing, [][]byte{plaintext}, 1, nil)
}

// SealChannel encrypts plaintext for every member of the channel of topic,
// joining it the first time and waiting for peers as PrepareChannel does,
// then SealNow. See SealPeer for routing.
func (m *Manager) SealChannel(ctx context.Context, topic string, peers []string, routing, plaintext []byte) ([]byte, error) {
	if err := m.PrepareChannel(ctx, topic, peers); err != nil {
		return nil, err
	}
	return m.SealNow(ctx, "", topic, routing, [][]byte{plaintext}, 1, nil)
}

// ErrNotReady: SealNow found no group to seal in, or one that may not be
// used yet (a restored epoch); PreparePeer or PrepareChannel had not
// succeeded, or the group was replaced since.
var ErrNotReady = errors.New("e2ee: group not ready for sealing")

// PreparePeer returns once the point-to-point session with peer can seal
// (SealNow): it sets the session up the first time and waits for a fresh
// epoch after a restore, at most JoinTimeout. When the session is ready it
// returns at once without taking any group lock (a seal in progress does
// not hold it up).
func (m *Manager) PreparePeer(ctx context.Context, peer string) error {
	gr, err := m.session(ctx, peer)
	if err != nil {
		return err
	}
	return m.waitFresh(ctx, gr)
}

// PrepareChannel returns once the channel of topic can seal (SealNow) for
// peers, the nodes the message goes to: it joins the channel the first
// time and, since a message sealed before one of them is a member could
// never be opened there, waits until every peer not gone is a member, at
// most JoinTimeout from the first message that found the peer missing (a
// peer that does not join in that time, or whose credential was refused,
// delays no later message; it cannot read them). When every peer is a
// member it returns at once without taking any group lock.
func (m *Manager) PrepareChannel(ctx context.Context, topic string, peers []string) error {
	gr, err := m.channel(ctx, topic)
	if err != nil {
		return err
	}
	if rs := gr.ready.Load(); rs != nil && rs.fresh && m.allMembers(rs, peers) {
		return nil
	}
	m.waitMembers(ctx, gr, peers)
	return m.waitFresh(ctx, gr)
}

func (m *Manager) allMembers(rs *readyState, peers []string) bool {
	for _, p := range peers {
		if p != m.node && p != "" && !slices.Contains(rs.members, p) {
			return false
		}
	}
	return true
}

// SealNow encrypts the concatenation of parts in the session with peer
// (topic "") or in the channel of topic, without waiting: it fails with
// ErrNotReady when the group is not there or not fresh (see PreparePeer,
// PrepareChannel). It is meant for the sidecar's peer writers, which must
// never wait for a handshake that they themselves would have to send. The
// parts may hold several messages (a batch): n is how many, counted
// towards RotateMessages. The sealed message is appended to dst (a buffer
// the caller reuses; its spare capacity must not overlap parts). See
// SealPeer for routing.
func (m *Manager) SealNow(ctx context.Context, peer, topic string, routing []byte, parts [][]byte, n int, dst []byte) ([]byte, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	var gr *group
	if topic == "" {
		gr = m.byPeer[peer]
	} else {
		gr = m.byTopic[topic]
	}
	m.mu.Unlock()
	if gr == nil {
		return nil, ErrNotReady
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.restored && gr.g.Epoch() <= gr.minEpoch {
		m.freshen(ctx, gr)
		return nil, ErrNotReady
	}
	return m.sealLocked(ctx, gr, routing, parts, uint64(max(n, 1)), dst)
}

// waitFresh waits, at most JoinTimeout, until gr's epoch is not a restored
// one: a restored epoch's sending generations may have been used before
// the restart.
func (m *Manager) waitFresh(ctx context.Context, gr *group) error {
	if rs := gr.ready.Load(); rs != nil && rs.fresh {
		return nil
	}
	deadline := time.Now().Add(m.cfg.JoinTimeout)
	for {
		gr.mu.Lock()
		if !gr.restored || gr.g.Epoch() > gr.minEpoch {
			gr.mu.Unlock()
			return nil
		}
		wake := gr.wakeup
		m.freshen(ctx, gr)
		gr.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("e2ee: group %s: no fresh epoch after restore", gr.name)
		}
		if err := m.waitChange(ctx, wake, m.cfg.RetryInterval); err != nil {
			return err
		}
	}
}

// waitMembers waits until every peer not gone is a member of gr, or the
// join deadline of each missing one has passed (see group.joinBy). Every
// RetryInterval it invites the missing peers to the group's committer
// (whose roster may not name them: a sidecar that only subscribes may have
// no route for the topic).
func (m *Manager) waitMembers(ctx context.Context, gr *group, peers []string) {
	var invited time.Time
	for {
		now := time.Now()
		var until time.Time
		var missing []string
		gr.mu.Lock()
		for _, p := range peers {
			if p == m.node || p == "" {
				continue
			}
			if gr.leafOf(p) >= 0 || m.roster.Gone(p) {
				delete(gr.joinBy, p)
				continue
			}
			d, ok := gr.joinBy[p]
			if !ok {
				if len(gr.joinBy) >= maxJoinWaits {
					continue
				}
				d = now.Add(m.cfg.JoinTimeout)
				gr.joinBy[p] = d
			}
			if d.After(until) {
				until = d
			}
			if d.After(now) {
				missing = append(missing, p)
			}
		}
		wake, c := gr.wakeup, gr.committer()
		gr.mu.Unlock()
		if !until.After(now) {
			return
		}
		if now.Sub(invited) >= m.cfg.RetryInterval {
			invited = now
			var body []byte
			if c != m.node {
				body = inviteBody(c, m.peerAddress(c))
			}
			for _, p := range missing {
				m.send(ctx, p, Envelope{Kind: KindInvite, Name: gr.name, Body: body})
			}
		}
		wait := min(until.Sub(now), m.cfg.RetryInterval)
		if m.waitChange(ctx, wake, wait) != nil {
			return
		}
	}
}

// maxJoinWaits bounds group.joinBy.
const maxJoinWaits = 4096

func routingDigest(routing []byte) []byte {
	d := sha256.Sum256(routing)
	return d[:]
}

// padding returns how many zero bytes pad n bytes of application data
// (with its length prefix) to the block size. ECDSA signatures, inside the
// ciphertext too, still vary by a few bytes.
func (m *Manager) padding(n int) int {
	b := m.cfg.PaddingBlock
	size := n + varintLen(n)
	return (b - size%b) % b
}

func varintLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<14:
		return 2
	}
	return 4
}

// sealLocked encrypts the concatenation of parts, which holds n
// application messages, in gr, appending to dst; call with gr.mu held.
func (m *Manager) sealLocked(ctx context.Context, gr *group, routing []byte, parts [][]byte, n uint64, dst []byte) ([]byte, error) {
	if gr.g.Removed() {
		return nil, ErrNotMember
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	ct, err := gr.g.AppendEncryptVec(dst, parts, mls.WithAuthenticatedData(routingDigest(routing)), mls.WithPadding(m.padding(size)))
	if err != nil {
		return nil, fmt.Errorf("e2ee: encrypt in %s: %w", gr.name, err)
	}
	m.met.sealed.Inc()
	gr.sent += n
	if m.cfg.RotateMessages > 0 && gr.sent >= m.cfg.RotateMessages {
		gr.sent = 0
		m.freshen(ctx, gr)
	}
	return ct, nil
}

// freshen starts a new epoch: the committer commits an Update, another
// member asks it to; call with gr.mu held.
func (m *Manager) freshen(ctx context.Context, gr *group) {
	c := gr.committer()
	if c == m.node {
		if err := m.rotate(ctx, gr); err != nil {
			m.log.Warn("mls rotation failed", "group", gr.name, "err", err)
		}
		return
	}
	name := gr.name
	if gr.kind == kindP2P {
		name = ""
	}
	m.send(ctx, c, Envelope{Kind: KindEpochRequest, Name: name})
}

// Open decrypts a message that node from sent with routing header routing.
// A message of a later epoch, or of an unknown group while this sidecar is
// joining the message's channel or its session with from (the Welcome may
// come over another link), waits at most EpochWait; a message of an unknown
// group that no pending join can explain is refused at once, so that it
// does not hold up the link's later messages. Every refusal is a counted,
// logged security event and an error wrapping ErrRefused.
func (m *Manager) Open(ctx context.Context, from string, routing, ciphertext []byte) ([]byte, error) {
	return m.open(ctx, from, routing, ciphertext, false)
}

// OpenInPlace is Open for a caller that gives ciphertext up: it is
// decrypted in its own bytes, and the result aliases it (the sidecar opens
// every peer message this way, in the frame it arrived in).
func (m *Manager) OpenInPlace(ctx context.Context, from string, routing, ciphertext []byte) ([]byte, error) {
	return m.open(ctx, from, routing, ciphertext, true)
}

func (m *Manager) open(ctx context.Context, from string, routing, ciphertext []byte, inPlace bool) ([]byte, error) {
	gid, epoch, err := peekPrivate(ciphertext)
	if err != nil {
		return nil, m.refuse(EventMalformed, from, "", err)
	}
	deadline := time.Now().Add(m.cfg.EpochWait)
	var gr *group
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		gr = m.openable(string(gid))
		ch := m.changed
		joining := gr == nil && m.joining(from, routing)
		m.mu.Unlock()
		if gr != nil {
			break
		}
		if !joining || !time.Now().Before(deadline) {
			return nil, m.refuse(EventUnknownGroup, from, "", errors.New("no such group"))
		}
		if err := m.waitChange(ctx, ch, time.Until(deadline)); err != nil {
			return nil, err
		}
	}
	for {
		gr.mu.Lock()
		cur := gr.g.Epoch()
		if epoch <= cur || !time.Now().Before(deadline) {
			break
		}
		wake := gr.wakeup
		gr.mu.Unlock()
		if err := m.waitChange(ctx, wake, time.Until(deadline)); err != nil {
			return nil, err
		}
	}
	defer gr.mu.Unlock()
	if gr.restored && epoch <= gr.minEpoch {
		return nil, m.refuse(EventOldEpoch, from, gr.name, errors.New("epoch of a restored state"))
	}
	if epoch > gr.g.Epoch() {
		return nil, m.refuse(EventFutureEpoch, from, gr.name, fmt.Errorf("epoch %d not reached", epoch))
	}
	var p *mls.Processed
	if inPlace {
		p, err = gr.g.ProcessMessageInPlace(ciphertext)
	} else {
		p, err = gr.g.ProcessMessage(ciphertext)
	}
	if err != nil {
		return nil, m.refuse(classify(err), from, gr.name, err)
	}
	if p.Kind != mls.KindApplication {
		return nil, m.refuse(EventMalformed, from, gr.name, fmt.Errorf("%s on the data path", p.Kind))
	}
	if int(p.Sender.Leaf) >= len(gr.nodes) || gr.nodes[p.Sender.Leaf] == "" {
		return nil, m.refuse(EventRemoved, from, gr.name, errors.New("sender is no longer a member"))
	}
	if gr.nodes[p.Sender.Leaf] != from {
		return nil, m.refuse(EventWrongSender, from, gr.name, fmt.Errorf("sent by node %q, signed by leaf of %q", from, gr.nodes[p.Sender.Leaf]))
	}
	if !hmac.Equal(p.AuthenticatedData, routingDigest(routing)) {
		return nil, m.refuse(EventRoutingHeader, from, gr.name, errors.New("routing header does not match"))
	}
	m.met.opened.Inc()
	return p.Application, nil
}

// joining reports whether this sidecar waits for a Welcome that a message
// from node from with routing header routing could be sealed for: a pending
// session with from, or a channel (the destination) wanted and not held or
// pending; call with m.mu held.
func (m *Manager) joining(from string, routing []byte) bool {
	if m.pendP2P[from] != nil {
		return true
	}
	dest, ok := routingDestination(routing)
	if !ok {
		return false
	}
	return m.pendCh[dest] != nil || (m.want[dest] && m.byTopic[dest] == nil)
}

// routingDestination returns the destination of an encoded routing header
// (sidecar.RoutingAAD: a 14-byte tag, then 16-bit length-prefixed source
// and destination).
func routingDestination(r []byte) (string, bool) {
	const tag = len("agp-routing-v1")
	if len(r) < tag+2 {
		return "", false
	}
	r = r[tag:]
	n := int(binary.BigEndian.Uint16(r))
	if len(r) < 2+n+2 {
		return "", false
	}
	r = r[2+n:]
	n = int(binary.BigEndian.Uint16(r))
	if len(r) < 2+n {
		return "", false
	}
	return string(r[2 : 2+n]), true
}

func (m *Manager) refuse(reason, from, name string, err error) error {
	m.met.decryptF.Inc()
	m.security(reason, from, name, err)
	return fmt.Errorf("%w (%s): %w", ErrRefused, reason, err)
}

// classify maps an mls error of an application message to its reason.
func classify(err error) string {
	switch {
	case errors.Is(err, mls.ErrGenerationReused):
		return EventReplay
	case errors.Is(err, mls.ErrFutureEpoch):
		return EventFutureEpoch
	case errors.Is(err, mls.ErrWrongEpoch):
		return EventOldEpoch
	case errors.Is(err, mls.ErrUnknownSender):
		return EventRemoved
	case errors.Is(err, mls.ErrDecrypt), errors.Is(err, mls.ErrBadSignature):
		return EventDecrypt
	case errors.Is(err, mls.ErrWrongGroup):
		return EventUnknownGroup
	}
	return EventMalformed
}

// SealOverhead is the most bytes a seal adds to its plaintext: the
// PrivateMessage framing, sender data, signature and tag (well under 512
// bytes for every supported suite) and the padding.
func (m *Manager) SealOverhead() int { return m.cfg.PaddingBlock + 512 }

// inviteBody names the committer an invited sidecar should send its
// KeyPackage to, with the committer's address if known: "node" or
// "node\x00address".
func inviteBody(committer, addr string) []byte {
	if addr == "" {
		return []byte(committer)
	}
	return []byte(committer + "\x00" + addr)
}

// parseInvite splits an invitation's body (see inviteBody).
func parseInvite(b []byte) (committer []byte, addr string) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i], string(b[i+1:])
	}
	return b, ""
}
