package e2ee

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// TopicPrefix is the reserved organisation prefix of the topics that carry
// MLS handshake traffic over the fabric (as "agwrpc." is for RPC). Agents
// must not subscribe to names under it.
const TopicPrefix = "agwmls."

// Kind is the kind of a handshake envelope.
type Kind uint8

// Handshake kinds.
const (
	// KindHello asks the peer of a point-to-point session (the higher node
	// id) for a KeyPackage.
	KindHello Kind = iota + 1
	// KindKeyPackage carries a KeyPackage to a committer (Name empty: a
	// point-to-point session; else the channel's topic).
	KindKeyPackage
	// KindWelcome carries a Welcome to a new member.
	KindWelcome
	// KindCommit carries a commit to the existing members.
	KindCommit
	// KindInvite tells a participant that the sender commits the channel.
	KindInvite
	// KindEpochRequest asks the committer for a fresh epoch (a restored or
	// rotated member must not reuse its sending keys).
	KindEpochRequest
	// KindLeave tells the committer of a channel that the sender left it.
	KindLeave
	// KindNoGroup answers a channel KeyPackage sent to a sidecar that does
	// not hold the group; Body is one byte, 1 if it is joining the channel
	// itself.
	KindNoGroup
	// KindHandover: the committer of a channel, whose credential rotated,
	// asks the next member to replace its leaf with the KeyPackage in Body
	// (a committer cannot remove itself).
	KindHandover
	// KindUpdate carries a member's Update proposal (an MLS PublicMessage)
	// to the committer, which commits it at once: the member's leaf with
	// its rotated certificate, in place.
	KindUpdate
	// KindCommitBundle carries a commit to a member together with the
	// proposals it includes by reference that the member has not seen
	// (a KindUpdate from another member): Body is a bundle (see
	// encodeBundle), the proposals first and the commit last.
	KindCommitBundle
	kindMax
)

func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindKeyPackage:
		return "key_package"
	case KindWelcome:
		return "welcome"
	case KindCommit:
		return "commit"
	case KindInvite:
		return "invite"
	case KindEpochRequest:
		return "epoch_request"
	case KindLeave:
		return "leave"
	case KindNoGroup:
		return "no_group"
	case KindHandover:
		return "handover"
	case KindUpdate:
		return "update"
	case KindCommitBundle:
		return "commit_bundle"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const envelopeVersion = 1

// Limits of an envelope.
const (
	MaxNameLen = 1024
	MaxBodyLen = 16 << 20
)

// Envelope is one handshake message between two sidecars. Name is the
// channel's topic, empty for a point-to-point session; Body is the MLS
// message (KeyPackage, Welcome, commit) or empty.
type Envelope struct {
	Kind Kind
	Name string
	Body []byte
}

// ErrEnvelope: a handshake envelope could not be decoded.
var ErrEnvelope = errors.New("e2ee: malformed handshake envelope")

// MarshalBinary encodes e: version, kind, uint16 name length, name, uint32
// body length, body.
func (e *Envelope) MarshalBinary() ([]byte, error) {
	if e.Kind == 0 || e.Kind >= kindMax {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrEnvelope, e.Kind)
	}
	if len(e.Name) > MaxNameLen || len(e.Body) > MaxBodyLen {
		return nil, fmt.Errorf("%w: name or body too long", ErrEnvelope)
	}
	b := make([]byte, 0, 8+len(e.Name)+len(e.Body))
	b = append(b, envelopeVersion, byte(e.Kind))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Name)))
	b = append(b, e.Name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Body)))
	return append(b, e.Body...), nil
}

// UnmarshalBinary decodes an envelope; Body aliases b.
func (e *Envelope) UnmarshalBinary(b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: %d bytes", ErrEnvelope, len(b))
	}
	if b[0] != envelopeVersion {
		return fmt.Errorf("%w: version %d", ErrEnvelope, b[0])
	}
	k := Kind(b[1])
	if k == 0 || k >= kindMax {
		return fmt.Errorf("%w: unknown kind %d", ErrEnvelope, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	if n > MaxNameLen || len(b) < n+4 {
		return fmt.Errorf("%w: truncated name", ErrEnvelope)
	}
	name := string(b[:n])
	b = b[n:]
	m := binary.BigEndian.Uint32(b)
	b = b[4:]
	if m > MaxBodyLen || uint32(len(b)) != m {
		return fmt.Errorf("%w: body length %d, %d bytes left", ErrEnvelope, m, len(b))
	}
	*e = Envelope{Kind: k, Name: name, Body: b}
	return nil
}

// maxBundle is the most MLS messages in a bundle.
const maxBundle = 16

// encodeBundle encodes MLS messages as a bundle: for each, its uint32
// length and its bytes.
func encodeBundle(msgs [][]byte) []byte {
	n := 0
	for _, b := range msgs {
		n += 4 + len(b)
	}
	out := make([]byte, 0, n)
	for _, b := range msgs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// decodeBundle splits a bundle into its messages (1 to maxBundle, none
// empty), which alias b.
func decodeBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(out) == maxBundle {
			return nil, fmt.Errorf("%w: more than %d messages in a bundle", ErrEnvelope, maxBundle)
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated bundle", ErrEnvelope)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if n == 0 || uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: bundle message of %d bytes, %d left", ErrEnvelope, n, len(b))
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty bundle", ErrEnvelope)
	}
	return out, nil
}

// peekPrivate returns the group id and epoch of an encoded MLSMessage
// holding a PrivateMessage (RFC 9420 §6: version, wire_format, then
// group_id<V> and epoch), without decoding the rest. gid aliases b.
func peekPrivate(b []byte) (gid []byte, epoch uint64, err error) {
	if len(b) < 4 || binary.BigEndian.Uint16(b) != 1 || binary.BigEndian.Uint16(b[2:]) != 2 {
		return nil, 0, errors.New("not an MLS 1.0 PrivateMessage")
	}
	b = b[4:]
	n, used, ok := readVarint(b)
	if !ok || uint64(len(b)-used) < n+8 {
		return nil, 0, errors.New("truncated PrivateMessage")
	}
	b = b[used:]
	return b[:n], binary.BigEndian.Uint64(b[n:]), nil
}

// readVarint reads an MLS variable-length integer (RFC 9420 §2.1.2).
func readVarint(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] >> 6 {
	case 0:
		return uint64(b[0]), 1, true
	case 1:
		if len(b) < 2 {
			return 0, 0, false
		}
		return uint64(binary.BigEndian.Uint16(b) & 0x3fff), 2, true
	case 2:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(binary.BigEndian.Uint32(b) & 0x3fffffff), 4, true
	}
	return 0, 0, false
}
