package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// Group is one member's state of an MLS group in its current epoch.
// It is not safe for concurrent use.
type Group struct {
	s   *suite.Suite
	cfg config

	ctx      wire.GroupContext
	ctxBytes []byte
	tree     *tree.Tree
	priv     *tree.Private // own leaf index and HPKE private keys
	sigPriv  []byte
	signer   *suite.Signer

	sec     *epochSecrets
	f       *framer
	interim []byte
	confTag []byte

	proposals      []cachedProposal  // proposals received in this epoch
	pendingUpdates map[string][]byte // own Update proposals: encryption key -> private key
	pendingSigs    map[string][]byte // own Update proposals with a new credential: encryption key -> signature private key
	resumption     []epochPSK        // resumption secrets of past epochs, oldest first
	pending        *pendingCommit
	removed        bool
	reinit         *wire.ReInit // set once a ReInit was committed
	past           []prevEpoch  // past epochs, oldest first, for late application messages
}

// prevEpoch keeps what is needed to decrypt application messages of a past
// epoch that arrive after its commit (§15.2): at most cfg.epochWindow of
// them are kept; they are not persisted.
type prevEpoch struct {
	epoch uint64
	f     *framer
	tree  *tree.Tree
}

// pastEpoch returns the kept state of a past epoch, or nil.
func (g *Group) pastEpoch(epoch uint64) *prevEpoch {
	for i := range g.past {
		if g.past[i].epoch == epoch {
			return &g.past[i]
		}
	}
	return nil
}

// cachedProposal is a proposal received or sent in the current epoch,
// kept for commits by reference.
type cachedProposal struct {
	ref      []byte
	proposal *wire.Proposal
	sender   wire.Sender
}

// epochPSK is the resumption secret of one epoch.
type epochPSK struct {
	epoch  uint64
	secret []byte
}

// Member is one member of the group.
type Member struct {
	Index        uint32
	Credential   Credential
	SignatureKey []byte
	// EncryptionKey is the member's current leaf HPKE public key.
	EncryptionKey []byte
}

// Suite returns the group's cipher suite.
func (g *Group) Suite() suite.ID { return g.s.ID() }

// GroupID returns the group id.
func (g *Group) GroupID() []byte { return append([]byte(nil), g.ctx.GroupID...) }

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// LeafIndex returns this member's leaf index.
func (g *Group) LeafIndex() uint32 { return uint32(g.priv.Leaf) }

// ReInit returns the parameters of the ReInit proposal committed in the
// current epoch, or nil. Once set, the group refuses to send.
func (g *Group) ReInit() *wire.ReInit { return g.reinit }

// canSend reports why this member may not send, if so.
func (g *Group) canSend() error {
	if g.removed {
		return ErrRemoved
	}
	if g.reinit != nil {
		return ErrReInit
	}
	return nil
}

// Removed reports whether this member was removed by a processed commit.
func (g *Group) Removed() bool { return g.removed }

// EpochAuthenticator returns the epoch_authenticator of the current epoch
// (RFC 9420 §8.7); members compare it out of band to detect forks.
func (g *Group) EpochAuthenticator() []byte { return append([]byte(nil), g.sec.EpochAuthenticator...) }

// Export returns MLS-Exporter(label, context, n) of the current epoch
// (RFC 9420 §8.5).
func (g *Group) Export(label string, context []byte, n int) ([]byte, error) {
	if n <= 0 || n > 255*g.s.Nh() {
		return nil, fmt.Errorf("%w: export length %d", ErrInvalidArgument, n)
	}
	out, err := g.sec.Export(label, context, n)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return out, nil
}

// Extensions returns the GroupContext extensions.
func (g *Group) Extensions() []wire.Extension {
	return append([]wire.Extension(nil), g.ctx.Extensions...)
}

// Members returns the current members in leaf order.
func (g *Group) Members() []Member {
	var out []Member
	for _, l := range g.tree.Members() {
		leaf := g.tree.Leaf(l)
		out = append(out, Member{
			Index: uint32(l), Credential: leaf.Credential,
			SignatureKey: leaf.SignatureKey, EncryptionKey: leaf.EncryptionKey,
		})
	}
	return out
}

// RatchetTree returns the encoded ratchet tree (the ratchet_tree extension
// body), for joiners who get it out of band.
func (g *Group) RatchetTree() []byte { return g.tree.EncodeBytes() }

// ResumptionPSK returns the resumption secret of the given epoch if the
// group still holds it.
func (g *Group) resumptionPSK(epoch uint64) ([]byte, bool) {
	if epoch == g.ctx.Epoch {
		return g.sec.ResumptionPSK, true
	}
	for _, r := range g.resumption {
		if r.epoch == epoch {
			return r.secret, true
		}
	}
	return nil, false
}

// installEpoch makes ctx, t, priv and secrets the current epoch.
func (g *Group) installEpoch(ctx wire.GroupContext, t *tree.Tree, priv *tree.Private, sec *epochSecrets, interim, confTag []byte) error {
	keys, err := newSecretTree(g.s, sec.EncryptionSecret, t.LeafCount())
	if err != nil {
		return err
	}
	if g.sec != nil && g.cfg.keepResumption > 0 {
		g.resumption = append(g.resumption, epochPSK{epoch: g.ctx.Epoch, secret: g.sec.ResumptionPSK})
		if len(g.resumption) > g.cfg.keepResumption {
			g.resumption = g.resumption[len(g.resumption)-g.cfg.keepResumption:]
		}
	}
	if w := g.cfg.epochWindow; w > 0 && g.f != nil && g.tree != nil {
		g.past = append(g.past, prevEpoch{epoch: g.ctx.Epoch, f: g.f, tree: g.tree})
		if len(g.past) > w {
			clear(g.past[:len(g.past)-w])
			g.past = append(g.past[:0], g.past[len(g.past)-w:]...)
		}
	} else {
		g.past = nil
	}
	g.ctx = ctx
	g.ctxBytes = wire.Encode(&g.ctx)
	g.tree = t
	g.priv = priv
	g.sec = sec
	g.interim = interim
	g.confTag = confTag
	g.proposals = nil
	g.pendingUpdates = nil
	g.pendingSigs = nil
	g.pending = nil
	g.f = &framer{
		s: g.s, groupID: ctx.GroupID, epoch: ctx.Epoch, ctx: g.ctxBytes,
		membershipKey: sec.MembershipKey, senderDataSecret: sec.SenderDataSecret,
		keys: keys,
	}
	return nil
}

// requiredCapabilities returns the required_capabilities extension of
// exts, or nil.
func requiredCapabilities(exts []wire.Extension) (*wire.RequiredCapabilities, error) {
	e := wire.FindExtension(exts, wire.ExtensionTypeRequiredCapabilities)
	if e == nil {
		return nil, nil
	}
	var rc wire.RequiredCapabilities
	if err := wire.Decode(e.Data, &rc); err != nil {
		return nil, fmt.Errorf("%w: required_capabilities: %w", ErrMalformed, err)
	}
	return &rc, nil
}

// externalSenders returns the external_senders extension of exts.
func externalSenders(exts []wire.Extension) (wire.ExternalSenders, error) {
	e := wire.FindExtension(exts, wire.ExtensionTypeExternalSenders)
	if e == nil {
		return nil, nil
	}
	var es wire.ExternalSenders
	if err := wire.Decode(e.Data, &es); err != nil {
		return nil, fmt.Errorf("%w: external_senders: %w", ErrMalformed, err)
	}
	return es, nil
}

// supportsRequired reports whether leaf supports the required capabilities.
func supportsRequired(leaf *wire.LeafNode, rc *wire.RequiredCapabilities) bool {
	if rc == nil {
		return true
	}
	for _, e := range rc.ExtensionTypes {
		if e > wire.ExtensionTypeExternalSenders && !slices.Contains(leaf.Capabilities.Extensions, e) {
			return false
		}
	}
	for _, p := range rc.ProposalTypes {
		if p > wire.ProposalTypeGroupContextExtensions && !slices.Contains(leaf.Capabilities.Proposals, p) {
			return false
		}
	}
	for _, c := range rc.CredentialTypes {
		if !slices.Contains(leaf.Capabilities.Credentials, c) {
			return false
		}
	}
	return true
}

// checkLeafInGroup performs the §7.3 checks that need the group: the
// required capabilities, support of the group context extensions,
// credential type compatibility with every member, and key uniqueness in
// t (except is the leaf being replaced, or an out-of-range index).
func checkLeafInGroup(t *tree.Tree, exts []wire.Extension, leaf *wire.LeafNode, except tree.LeafIndex) error {
	rc, err := requiredCapabilities(exts)
	if err != nil {
		return err
	}
	if !supportsRequired(leaf, rc) {
		return fmt.Errorf("%w: does not support the group's required capabilities", ErrInvalidLeafNode)
	}
	for _, e := range exts {
		if e.Type > wire.ExtensionTypeExternalSenders && !wire.IsGREASE(uint16(e.Type)) && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: does not support group extension %d", ErrInvalidLeafNode, e.Type)
		}
	}
	for _, l := range t.Members() {
		if l == except {
			continue
		}
		m := t.Leaf(l)
		if !slices.Contains(leaf.Capabilities.Credentials, m.Credential.Type) {
			return fmt.Errorf("%w: does not support the credential type of member %d", ErrInvalidLeafNode, l)
		}
		if !slices.Contains(m.Capabilities.Credentials, leaf.Credential.Type) {
			return fmt.Errorf("%w: member %d does not support its credential type", ErrInvalidLeafNode, l)
		}
	}
	if err := t.CheckLeafKeys(leaf, except); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	return nil
}

// validateTree checks a tree received from another party against the
// GroupContext (§12.4.3.1): tree hash, parent hashes, leaf nodes,
// uniqueness of keys, capabilities.
func validateTree(s *suite.Suite, cfg *config, t *tree.Tree, ctx *wire.GroupContext) error {
	if err := t.Validate(ctx.GroupID); err != nil {
		if errors.Is(err, tree.ErrLeafSignature) {
			return fmt.Errorf("%w: %w: %w", ErrInvalidTree, ErrBadSignature, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidTree, err)
	}
	if !bytes.Equal(t.TreeHash(), ctx.TreeHash) {
		return fmt.Errorf("%w: tree hash does not match the group context", ErrInvalidTree)
	}
	rc, err := requiredCapabilities(ctx.Extensions)
	if err != nil {
		return err
	}
	for _, l := range t.Members() {
		leaf := t.Leaf(l)
		if err := leafPolicy(cfg, leaf); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, l, err)
		}
		if !supportsRequired(leaf, rc) {
			return fmt.Errorf("%w: leaf %d lacks required capabilities", ErrInvalidTree, l)
		}
	}
	return nil
}

// signatureKeyOf returns the signature key of member leaf l.
func (g *Group) memberKey(l uint32) ([]byte, error) {
	leaf := g.tree.Leaf(tree.LeafIndex(l))
	if leaf == nil {
		return nil, fmt.Errorf("%w: leaf %d is not a member", ErrUnknownSender, l)
	}
	return leaf.SignatureKey, nil
}

// PendingProposals returns how many proposals of the current epoch are
// cached for the next commit. A member that holds proposals must commit
// before it sends application data (Encrypt refuses until then), except
// for its own Update proposals: until another member commits one, the
// member goes on sending with its current leaf.
func (g *Group) PendingProposals() int { return len(g.proposals) }

// blockingProposals counts the cached proposals that forbid sending
// application data: all but this member's own Update proposals, which
// change nothing of what it sends until they are committed.
func (g *Group) blockingProposals() int {
	n := 0
	for i := range g.proposals {
		cp := &g.proposals[i]
		if cp.proposal.Type == wire.ProposalTypeUpdate && cp.sender.Type == wire.SenderTypeMember && cp.sender.LeafIndex == uint32(g.priv.Leaf) {
			continue
		}
		n++
	}
	return n
}

// DiscardProposal drops a cached proposal of the current epoch (ref is
// Processed.ProposalRef): a member that would commit it but cannot (the
// commit fails, or the application refuses it) is not kept from sending
// by it. It reports whether the proposal was cached.
func (g *Group) DiscardProposal(ref []byte) bool {
	for i := range g.proposals {
		if bytes.Equal(g.proposals[i].ref, ref) {
			g.proposals = slices.Delete(g.proposals, i, i+1)
			return true
		}
	}
	return false
}
