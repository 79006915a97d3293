package mls

import (
	"crypto/rand"
	"fmt"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// AddProposal returns an Add proposal for an encoded KeyPackage, for
// Commit's by-value list.
func AddProposal(keyPackage []byte) (*wire.Proposal, error) {
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, err
	}
	return &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}, nil
}

// RemoveProposal returns a Remove proposal for the member at leaf.
func RemoveProposal(leaf uint32) *wire.Proposal {
	return &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: leaf}}
}

// GroupContextExtensionsProposal returns a proposal replacing the group's
// GroupContext extensions.
func GroupContextExtensionsProposal(exts ...wire.Extension) *wire.Proposal {
	return &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions,
		GroupContextExtensions: &wire.GroupContextExtensions{Extensions: exts}}
}

// ExternalPSKProposal returns a PreSharedKey proposal for the external
// PSK id (the secret must be known to every member, see WithExternalPSK).
func (g *Group) ExternalPSKProposal(id []byte) (*wire.Proposal, error) {
	nonce, err := g.pskNonce()
	if err != nil {
		return nil, err
	}
	return &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		PSKType: wire.PSKTypeExternal, PSKID: append([]byte(nil), id...), PSKNonce: nonce,
	}}}, nil
}

// ResumptionPSKProposal returns a PreSharedKey proposal injecting the
// resumption secret of one of this group's past epochs.
func (g *Group) ResumptionPSKProposal(epoch uint64) (*wire.Proposal, error) {
	if _, ok := g.resumptionPSK(epoch); !ok {
		return nil, fmt.Errorf("%w: resumption secret of epoch %d", ErrMissingPSK, epoch)
	}
	nonce, err := g.pskNonce()
	if err != nil {
		return nil, err
	}
	return &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication,
		PSKGroupID: g.GroupID(), PSKEpoch: epoch, PSKNonce: nonce,
	}}}, nil
}

func (g *Group) pskNonce() ([]byte, error) {
	nonce := make([]byte, g.s.Nh())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("mls: psk nonce: %w", err)
	}
	return nonce, nil
}

// Propose sends a proposal as a standalone message (PublicMessage, or
// PrivateMessage with WithHandshakeEncryption) and caches it so that the
// next commit of this member includes it. It returns the encoded message.
func (g *Group) Propose(p *wire.Proposal, opts ...Option) ([]byte, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: nil proposal", ErrInvalidArgument)
	}
	me := wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.priv.Leaf)}
	if err := g.checkProposal(me, p); err != nil {
		return nil, err
	}
	cfg := g.callConfig(opts)
	ac, err := g.frame(&cfg, wire.ContentTypeProposal, nil, p, nil)
	if err != nil {
		return nil, err
	}
	msg, err := g.protect(&cfg, ac)
	if err != nil {
		return nil, err
	}
	g.proposals = append(g.proposals, cachedProposal{ref: g.s.ProposalRef(wire.Encode(ac)), proposal: p, sender: me})
	return msg, nil
}

// ProposeAdd proposes adding the member of an encoded KeyPackage.
func (g *Group) ProposeAdd(keyPackage []byte, opts ...Option) ([]byte, error) {
	p, err := AddProposal(keyPackage)
	if err != nil {
		return nil, err
	}
	return g.Propose(p, opts...)
}

// ProposeRemove proposes removing the member at leaf.
func (g *Group) ProposeRemove(leaf uint32, opts ...Option) ([]byte, error) {
	return g.Propose(RemoveProposal(leaf), opts...)
}

// ProposeUpdate proposes replacing this member's leaf with a fresh
// encryption key (RFC 9420 §12.1.2). The private key is kept until the
// epoch ends. With WithLeafCredential the new leaf carries the new
// credential and signature key (and is signed with it; the proposal
// itself is signed with the current key); the member signs with the new
// key once a commit that includes the proposal is applied.
func (g *Group) ProposeUpdate(opts ...Option) ([]byte, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	cfg := g.callConfig(opts)
	id, err := g.rotation(&cfg)
	if err != nil {
		return nil, err
	}
	old := g.tree.Leaf(g.priv.Leaf)
	priv, pub, err := g.s.GenerateHPKEKey()
	if err != nil {
		return nil, fmt.Errorf("mls: encryption key: %w", err)
	}
	leaf := &wire.LeafNode{
		EncryptionKey: pub, SignatureKey: old.SignatureKey, Credential: old.Credential,
		Capabilities: old.Capabilities, Source: wire.LeafNodeSourceUpdate, Extensions: old.Extensions,
	}
	signer := g.signer
	if id != nil {
		leaf.SignatureKey, leaf.Credential, signer = id.signer.PublicKey(), id.cred, id.signer
	}
	if err := tree.SignLeaf(signer, leaf, g.ctx.GroupID, g.priv.Leaf); err != nil {
		return nil, err
	}
	msg, err := g.Propose(&wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: *leaf}}, opts...)
	if err != nil {
		return nil, err
	}
	if g.pendingUpdates == nil {
		g.pendingUpdates = map[string][]byte{}
	}
	g.pendingUpdates[string(pub)] = priv
	if id != nil {
		if g.pendingSigs == nil {
			g.pendingSigs = map[string][]byte{}
		}
		g.pendingSigs[string(pub)] = id.sigPriv
	}
	return msg, nil
}

// ProposeGroupContextExtensions proposes new GroupContext extensions.
func (g *Group) ProposeGroupContextExtensions(exts []wire.Extension, opts ...Option) ([]byte, error) {
	return g.Propose(GroupContextExtensionsProposal(exts...), opts...)
}

// Add commits the addition of the members of the encoded KeyPackages (plus
// any proposals received in the epoch). See Commit.
func (g *Group) Add(keyPackages [][]byte, opts ...Option) (*CommitResult, error) {
	ps := make([]*wire.Proposal, 0, len(keyPackages))
	for _, kp := range keyPackages {
		p, err := AddProposal(kp)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return g.Commit(ps, opts...)
}

// Remove commits the removal of the members at the given leaves. See
// Commit.
func (g *Group) Remove(leaves []uint32, opts ...Option) (*CommitResult, error) {
	ps := make([]*wire.Proposal, 0, len(leaves))
	for _, l := range leaves {
		ps = append(ps, RemoveProposal(l))
	}
	return g.Commit(ps, opts...)
}

// Update commits a fresh UpdatePath for this member (an "empty" commit
// with a path, plus any proposals received), renewing its keys for
// post-compromise security. See Commit.
func (g *Group) Update(opts ...Option) (*CommitResult, error) {
	return g.Commit(nil, append(opts, WithPath())...)
}

// ExternalProposal creates a proposal sent from outside the group by the
// external sender at index senderIndex of the group's external_senders
// extension (RFC 9420 §12.1.8), signed with that sender's signature
// private key. Only Add, Remove, PreSharedKey, ReInit and
// GroupContextExtensions proposals may be sent this way. It returns the
// encoded PublicMessage; members process it with ProcessMessage.
func ExternalProposal(id suite.ID, groupID []byte, epoch uint64, senderIndex uint32, signaturePriv []byte, p *wire.Proposal, opts ...Option) ([]byte, error) {
	return outsideProposal(id, groupID, epoch, wire.Sender{Type: wire.SenderTypeExternal, SenderIndex: senderIndex}, signaturePriv, p, opts)
}

// NewMemberProposal creates an Add proposal by which the owner of a
// KeyPackage asks to be added to a group (sender type
// new_member_proposal, RFC 9420 §12.1.8). It is signed with the bundle's
// signature key.
func NewMemberProposal(groupID []byte, epoch uint64, kpb *KeyPackageBundle, opts ...Option) ([]byte, error) {
	if kpb == nil || kpb.KeyPackage == nil {
		return nil, fmt.Errorf("%w: no key package bundle", ErrInvalidArgument)
	}
	p := &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kpb.KeyPackage}}
	return outsideProposal(suite.ID(kpb.KeyPackage.CipherSuite), groupID, epoch,
		wire.Sender{Type: wire.SenderTypeNewMemberProposal}, kpb.SignaturePriv, p, opts)
}

func outsideProposal(id suite.ID, groupID []byte, epoch uint64, sender wire.Sender, sigPriv []byte, p *wire.Proposal, opts []Option) ([]byte, error) {
	s, err := suite.Get(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: nil proposal", ErrInvalidArgument)
	}
	if err := senderMayPropose(sender, p); err != nil {
		return nil, err
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: signature key: %w", ErrInvalidArgument, err)
	}
	cfg := newConfig(opts)
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: wire.FramedContent{
		GroupID: groupID, Epoch: epoch, Sender: sender, AuthenticatedData: cfg.authenticatedData,
		ContentType: wire.ContentTypeProposal, Proposal: p,
	}}
	f := &framer{s: s, groupID: groupID, epoch: epoch}
	if ac.Auth.Signature, err = f.signContent(signer, ac.WireFormat, &ac.Content); err != nil {
		return nil, err
	}
	pm, err := f.protectPublic(ac)
	if err != nil {
		return nil, err
	}
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}), nil
}
