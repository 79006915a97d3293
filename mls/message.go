package mls

import (
	"bytes"
	"fmt"

	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// ContentKind says what a processed message carried.
type ContentKind uint8

// Kinds of processed messages.
const (
	KindApplication ContentKind = iota + 1
	KindProposal
	KindCommit
)

// String returns the kind's name.
func (k ContentKind) String() string {
	switch k {
	case KindApplication:
		return "application"
	case KindProposal:
		return "proposal"
	case KindCommit:
		return "commit"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Sender identifies the sender of a processed message.
type Sender struct {
	Type wire.SenderType
	// Leaf is the member's leaf index (sender type member).
	Leaf uint32
	// ExternalIndex is the index in the external_senders extension
	// (sender type external).
	ExternalIndex uint32
}

// Processed is the result of ProcessMessage.
type Processed struct {
	Kind   ContentKind
	Sender Sender
	// Epoch is the epoch the message was sent in: the current one, or the
	// previous one for a late application message.
	Epoch             uint64
	WireFormat        wire.WireFormat
	AuthenticatedData []byte
	// Application holds the plaintext of an application message.
	Application []byte
	// Proposal and ProposalRef are set for a proposal (now cached for the
	// next commit).
	Proposal    *wire.Proposal
	ProposalRef []byte
	// Commit is set for an applied commit.
	Commit *CommitInfo
}

// ProcessMessage processes an encoded MLSMessage (PublicMessage or
// PrivateMessage) of this group: it decrypts application data, caches
// proposals for the next commit, and applies commits, advancing the
// epoch. Every check of RFC 9420 §6 and §12 is made; failures wrap the
// package's sentinel errors. A failed message leaves the group unchanged.
// ProcessMessage does not modify msg and the result does not alias it:
// the caller may reuse msg once it returns.
func (g *Group) ProcessMessage(msg []byte) (*Processed, error) {
	return g.processBytes(msg, false)
}

// ProcessMessageInPlace is ProcessMessage for a caller that does not need
// msg afterwards: an application message is decrypted into msg's own
// bytes instead of a new buffer, so Processed.Application aliases msg.
// msg's contents are unspecified after the call, whether it succeeds or
// fails. Nothing else in the result, and nothing the group keeps, aliases
// msg: once done with Application the caller may reuse msg. Other
// messages are processed as by ProcessMessage.
func (g *Group) ProcessMessageInPlace(msg []byte) (*Processed, error) {
	return g.processBytes(msg, true)
}

func (g *Group) processBytes(msg []byte, inPlace bool) (*Processed, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	m, err := decodeMessage(msg)
	if err != nil {
		return nil, err
	}
	return g.process(m, inPlace)
}

// process processes a decoded message (see ProcessMessage); with inPlace
// a PrivateMessage is decrypted in its ciphertext's bytes.
func (g *Group) process(m *wire.MLSMessage, inPlace bool) (*Processed, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	var ac *wire.AuthenticatedContent
	var err error
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		ac, err = g.f.unprotectPublic(m.PublicMessage)
	case wire.WireFormatPrivateMessage:
		pm := m.PrivateMessage
		if pm.ContentType == wire.ContentTypeApplication && pm.Epoch < g.ctx.Epoch &&
			string(pm.GroupID) == string(g.ctx.GroupID) {
			if prev := g.pastEpoch(pm.Epoch); prev != nil {
				return g.processLate(prev, pm, inPlace)
			}
		}
		ac, err = g.f.openPrivate(pm, func(l uint32) bool {
			return g.tree.Leaf(tree.LeafIndex(l)) != nil
		}, inPlace)
	default:
		return nil, fmt.Errorf("%w: %v is not a group message", ErrInvalidMessage, m.WireFormat)
	}
	if err != nil {
		return nil, err
	}
	pub, err := g.senderKey(ac)
	if err != nil {
		return nil, err
	}
	if err := g.f.verifyContent(pub, ac); err != nil {
		return nil, err
	}
	out := &Processed{
		Epoch:             ac.Content.Epoch,
		WireFormat:        ac.WireFormat,
		AuthenticatedData: ac.Content.AuthenticatedData,
		Sender: Sender{Type: ac.Content.Sender.Type, Leaf: ac.Content.Sender.LeafIndex,
			ExternalIndex: ac.Content.Sender.SenderIndex},
	}
	switch ac.Content.ContentType {
	case wire.ContentTypeApplication:
		out.Kind = KindApplication
		out.Application = ac.Content.Application
	case wire.ContentTypeProposal:
		out.Kind = KindProposal
		out.Proposal = ac.Content.Proposal
		if out.ProposalRef, err = g.cacheProposal(ac); err != nil {
			return nil, err
		}
	case wire.ContentTypeCommit:
		out.Kind = KindCommit
		if out.Commit, err = g.processCommit(ac); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: content type %v", ErrMalformed, ac.Content.ContentType)
	}
	return out, nil
}

// processLate decrypts an application message of a past epoch.
func (g *Group) processLate(prev *prevEpoch, pm *wire.PrivateMessage, inPlace bool) (*Processed, error) {
	ac, err := prev.f.openPrivate(pm, func(l uint32) bool {
		return prev.tree.Leaf(tree.LeafIndex(l)) != nil
	}, inPlace)
	if err != nil {
		return nil, err
	}
	leaf := prev.tree.Leaf(tree.LeafIndex(ac.Content.Sender.LeafIndex))
	if err := prev.f.verifyContent(leaf.SignatureKey, ac); err != nil {
		return nil, err
	}
	return &Processed{
		Kind: KindApplication, WireFormat: ac.WireFormat, AuthenticatedData: ac.Content.AuthenticatedData,
		Application: ac.Content.Application,
		Sender:      Sender{Type: wire.SenderTypeMember, Leaf: ac.Content.Sender.LeafIndex},
		Epoch:       pm.Epoch,
	}, nil
}

// senderKey returns the signature public key that must have signed ac,
// checking that the sender type fits the content (§6).
func (g *Group) senderKey(ac *wire.AuthenticatedContent) ([]byte, error) {
	c := &ac.Content
	switch c.Sender.Type {
	case wire.SenderTypeMember:
		return g.memberKey(c.Sender.LeafIndex)
	case wire.SenderTypeExternal:
		if c.ContentType != wire.ContentTypeProposal {
			return nil, fmt.Errorf("%w: external sender sent a %v", ErrInvalidMessage, c.ContentType)
		}
		es, err := externalSenders(g.ctx.Extensions)
		if err != nil {
			return nil, err
		}
		if int64(c.Sender.SenderIndex) >= int64(len(es)) {
			return nil, fmt.Errorf("%w: external sender %d", ErrUnknownSender, c.Sender.SenderIndex)
		}
		return es[c.Sender.SenderIndex].SignatureKey, nil
	case wire.SenderTypeNewMemberProposal:
		if c.ContentType != wire.ContentTypeProposal || c.Proposal.Type != wire.ProposalTypeAdd || c.Proposal.Add == nil {
			return nil, fmt.Errorf("%w: new member proposal that is not an add", ErrInvalidMessage)
		}
		return c.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
	case wire.SenderTypeNewMemberCommit:
		if c.ContentType != wire.ContentTypeCommit || c.Commit.Path == nil {
			return nil, fmt.Errorf("%w: new member commit without a path", ErrInvalidMessage)
		}
		return c.Commit.Path.LeafNode.SignatureKey, nil
	}
	return nil, fmt.Errorf("%w: sender type %v", ErrUnknownSender, c.Sender.Type)
}

// cacheProposal validates a received proposal and stores it by reference.
func (g *Group) cacheProposal(ac *wire.AuthenticatedContent) ([]byte, error) {
	if err := g.checkProposal(ac.Content.Sender, ac.Content.Proposal); err != nil {
		return nil, err
	}
	ref := g.s.ProposalRef(wire.Encode(ac))
	for _, cp := range g.proposals {
		if bytes.Equal(cp.ref, ref) {
			return ref, nil
		}
	}
	g.proposals = append(g.proposals, cachedProposal{ref: ref, proposal: ac.Content.Proposal, sender: ac.Content.Sender})
	return ref, nil
}

// callConfig returns the group's config with per-call options applied.
func (g *Group) callConfig(opts []Option) config {
	c := g.cfg
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// frame builds, signs and protects content from this member in the
// current epoch.
func (g *Group) frame(cfg *config, ct wire.ContentType, app []byte, p *wire.Proposal, c *wire.Commit) (*wire.AuthenticatedContent, error) {
	wf := wire.WireFormatPublicMessage
	if ct == wire.ContentTypeApplication || cfg.encryptHandshake {
		wf = wire.WireFormatPrivateMessage
	}
	ac := &wire.AuthenticatedContent{WireFormat: wf, Content: wire.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.priv.Leaf)},
		AuthenticatedData: cfg.authenticatedData, ContentType: ct,
		Application: app, Proposal: p, Commit: c,
	}}
	sig, err := g.f.signContent(g.signer, wf, &ac.Content)
	if err != nil {
		return nil, err
	}
	ac.Auth.Signature = sig
	return ac, nil
}

// protect encodes ac as the MLSMessage of its wire format.
func (g *Group) protect(cfg *config, ac *wire.AuthenticatedContent) ([]byte, error) {
	m := &wire.MLSMessage{WireFormat: ac.WireFormat}
	var err error
	if ac.WireFormat == wire.WireFormatPublicMessage {
		m.PublicMessage, err = g.f.protectPublic(ac)
	} else {
		m.PrivateMessage, err = g.f.protectPrivate(ac, uint32(g.priv.Leaf), cfg.padding)
	}
	if err != nil {
		return nil, err
	}
	return encodeMessage(m), nil
}

// Encrypt protects application data as a PrivateMessage of the current
// epoch. Options: WithAuthenticatedData, WithPadding. The message is
// built in one exactly sized buffer; plaintext is not kept.
func (g *Group) Encrypt(plaintext []byte, opts ...Option) ([]byte, error) {
	return g.AppendEncryptVec(nil, [][]byte{plaintext}, opts...)
}

// EncryptVec is Encrypt of the concatenation of parts, without building
// it: the parts are signed and copied into the message where they lie.
func (g *Group) EncryptVec(parts [][]byte, opts ...Option) ([]byte, error) {
	return g.AppendEncryptVec(nil, parts, opts...)
}

// AppendEncryptVec is EncryptVec appending the message to dst, which it
// grows (with one allocation, exactly sized) only if its spare capacity
// is too small: a caller that reuses dst encrypts without allocating a
// message buffer. dst's spare capacity must not overlap parts or the
// authenticated data. On error dst's spare capacity holds unspecified
// bytes.
func (g *Group) AppendEncryptVec(dst []byte, parts [][]byte, opts ...Option) ([]byte, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if n := g.blockingProposals(); n > 0 {
		// §12.4: a member that saw proposals must commit before sending data.
		return nil, fmt.Errorf("%w: commit the %d pending proposals first", ErrInvalidMessage, n)
	}
	cfg := g.callConfig(opts)
	fc := &wire.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.priv.Leaf)},
		AuthenticatedData: cfg.authenticatedData, ContentType: wire.ContentTypeApplication,
	}
	return g.f.sealApplication(dst, g.signer, fc, parts, cfg.padding)
}

// Decrypt processes an application message and returns its plaintext; any
// other content is refused with ErrInvalidMessage (use ProcessMessage).
// Like ProcessMessage it does not modify msg, and the plaintext does not
// alias it.
func (g *Group) Decrypt(msg []byte) ([]byte, error) {
	m, err := decodeMessage(msg)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatPrivateMessage || m.PrivateMessage.ContentType != wire.ContentTypeApplication {
		return nil, fmt.Errorf("%w: not an application message", ErrInvalidMessage)
	}
	p, err := g.process(m, false)
	if err != nil {
		return nil, err
	}
	return p.Application, nil
}
