package mls

import (
	"bytes"
	"fmt"

	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// labelWelcome is the EncryptWithLabel label of GroupSecrets (§12.4.3.1).
const labelWelcome = "Welcome"

// Join creates the group state of a new member from a Welcome message (an
// encoded MLSMessage) addressed to the bundle's KeyPackage (RFC 9420
// §12.4.3.1). Options: WithRatchetTree when the GroupInfo has no
// ratchet_tree extension, WithExternalPSK for PSKs the Welcome lists,
// WithoutLifetimeCheck, WithCredentialValidator, WithHandshakeEncryption,
// WithPadding, WithResumptionPSKs.
func Join(welcome []byte, kpb *KeyPackageBundle, opts ...Option) (*Group, error) {
	if kpb == nil || kpb.KeyPackage == nil {
		return nil, fmt.Errorf("%w: no key package bundle", ErrInvalidArgument)
	}
	m, err := decodeMessage(welcome)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatWelcome {
		return nil, fmt.Errorf("%w: message is a %v, not a welcome", ErrInvalidWelcome, m.WireFormat)
	}
	cfg := newConfig(opts)
	return join(m.Welcome, kpb, &cfg)
}

func join(w *wire.Welcome, kpb *KeyPackageBundle, cfg *config) (*Group, error) {
	kp := kpb.KeyPackage
	s, gs, psk, gi, err := openWelcome(w, kpb, cfg)
	if err != nil {
		return nil, err
	}
	t, err := groupInfoTree(s, cfg, gi)
	if err != nil {
		return nil, err
	}
	if err := verifyGroupInfo(s, t, gi); err != nil {
		return nil, err
	}
	if err := validateTree(s, cfg, t, &gi.GroupContext); err != nil {
		return nil, err
	}
	if err := checkGroupExtensions(gi.GroupContext.Extensions); err != nil {
		return nil, err
	}
	// Find our leaf: identical to the KeyPackage's leaf node.
	want := wire.Encode(&kp.LeafNode)
	me, ok := t.FindLeaf(func(_ tree.LeafIndex, l *wire.LeafNode) bool {
		return bytes.Equal(wire.Encode(l), want)
	})
	if !ok {
		return nil, fmt.Errorf("%w: our leaf is not in the tree", ErrInvalidWelcome)
	}
	priv := tree.NewPrivate(me, kpb.EncryptionPriv)
	if gs.PathSecret != nil {
		if err := priv.AddPathSecret(t, tree.LeafIndex(gi.Signer), gs.PathSecret); err != nil {
			return nil, fmt.Errorf("%w: path secret: %w", ErrInvalidWelcome, err)
		}
	}
	if err := priv.Check(t); err != nil {
		return nil, fmt.Errorf("%w: private keys: %w", ErrInvalidWelcome, err)
	}
	ctxBytes := wire.Encode(&gi.GroupContext)
	sec, err := joinEpoch(s, gs.JoinerSecret, psk, ctxBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	if !schedule.VerifyConfirmationTag(s, sec.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, fmt.Errorf("%w: group info", ErrBadConfirmationTag)
	}
	if err := checkResumptionJoin(cfg, gs, gi); err != nil {
		return nil, err
	}
	g, err := newGroupState(s, cfg, kpb.SignaturePriv)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(t.Leaf(me).SignatureKey, g.signer.PublicKey()) {
		return nil, fmt.Errorf("%w: signature key does not match our leaf", ErrInvalidArgument)
	}
	if err := g.installEpoch(gi.GroupContext, t, priv, sec, interimHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag), gi.ConfirmationTag); err != nil {
		return nil, err
	}
	return g, nil
}

// openWelcome decrypts the GroupSecrets and GroupInfo of a Welcome for
// the bundle's KeyPackage and returns them with the psk_secret.
func openWelcome(w *wire.Welcome, kpb *KeyPackageBundle, cfg *config) (*suite.Suite, *wire.GroupSecrets, []byte, *wire.GroupInfo, error) {
	kp := kpb.KeyPackage
	if w.CipherSuite != kp.CipherSuite {
		return nil, nil, nil, nil, fmt.Errorf("%w: welcome suite %d, key package suite %d", ErrInvalidWelcome, w.CipherSuite, kp.CipherSuite)
	}
	s, err := suiteOf(w.CipherSuite)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ref := s.KeyPackageRef(wire.Encode(kp))
	var egs *wire.EncryptedGroupSecrets
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			egs = &w.Secrets[i]
			break
		}
	}
	if egs == nil {
		return nil, nil, nil, nil, ErrNoMatchingKeyPackage
	}
	plain, err := s.DecryptWithLabel(kpb.InitPriv, labelWelcome, w.EncryptedGroupInfo,
		egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: group secrets: %w", ErrDecrypt, err)
	}
	var gs wire.GroupSecrets
	if err := wire.Decode(plain, &gs); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: group secrets: %w", ErrMalformed, err)
	}
	if len(gs.JoinerSecret) != s.Nh() {
		return nil, nil, nil, nil, fmt.Errorf("%w: joiner secret of %d bytes", ErrInvalidWelcome, len(gs.JoinerSecret))
	}
	special := 0
	for _, p := range gs.PSKs {
		if p.PSKType == wire.PSKTypeResumption && p.Usage != wire.ResumptionPSKUsageApplication {
			special++
		}
	}
	if special > 1 {
		return nil, nil, nil, nil, fmt.Errorf("%w: more than one reinit/branch PSK", ErrInvalidWelcome)
	}
	psk, err := resolvePSKs(s, cfg, gs.PSKs, priorResumption(cfg))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	welcomeSecret, err := schedule.WelcomeSecret(s, gs.JoinerSecret, psk)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	key, nonce := schedule.WelcomeKeyNonce(s, welcomeSecret)
	giBytes, err := s.Open(key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: group info: %w", ErrDecrypt, err)
	}
	var gi wire.GroupInfo
	if err := wire.Decode(giBytes, &gi); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: group info: %w", ErrMalformed, err)
	}
	if gi.GroupContext.CipherSuite != kp.CipherSuite || gi.GroupContext.Version != wire.MLS10 {
		return nil, nil, nil, nil, fmt.Errorf("%w: group info suite or version differs from the key package", ErrInvalidWelcome)
	}
	return s, &gs, psk, &gi, nil
}

// newGroupState returns a Group with suite, config and signer set.
func newGroupState(s *suite.Suite, cfg *config, sigPriv []byte) (*Group, error) {
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: signature key: %w", ErrInvalidArgument, err)
	}
	g := &Group{s: s, cfg: *cfg, sigPriv: append([]byte(nil), sigPriv...), signer: signer}
	g.cfg.leafCred, g.cfg.leafSigPriv = nil, nil // per call only
	return g, nil
}

// groupInfoTree returns the tree from the GroupInfo's ratchet_tree
// extension or, failing that, from WithRatchetTree.
func groupInfoTree(s *suite.Suite, cfg *config, gi *wire.GroupInfo) (*tree.Tree, error) {
	raw := cfg.ratchetTree
	if e := wire.FindExtension(gi.Extensions, wire.ExtensionTypeRatchetTree); e != nil {
		raw = e.Data
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: no ratchet tree in the group info and none supplied", ErrInvalidGroupInfo)
	}
	t, err := tree.DecodeBytes(s, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTree, err)
	}
	return t, nil
}

// verifyGroupInfo checks the GroupInfo signature with the signer's leaf.
func verifyGroupInfo(s *suite.Suite, t *tree.Tree, gi *wire.GroupInfo) error {
	leaf := t.Leaf(tree.LeafIndex(gi.Signer))
	if leaf == nil {
		return fmt.Errorf("%w: signer %d is not a member", ErrInvalidGroupInfo, gi.Signer)
	}
	if err := s.VerifyWithLabel(leaf.SignatureKey, labelGroupInfo, gi.TBS(), gi.Signature); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrInvalidGroupInfo, ErrBadSignature, err)
	}
	return nil
}

// checkGroupExtensions refuses GroupContext extensions this client does
// not support (§13: they MUST be supported by a joiner) and malformed
// known ones.
func checkGroupExtensions(exts []wire.Extension) error {
	seen := map[wire.ExtensionType]bool{}
	for _, e := range exts {
		if seen[e.Type] {
			return fmt.Errorf("%w: duplicate group context extension %d", ErrInvalidProposal, e.Type)
		}
		seen[e.Type] = true
		switch e.Type {
		case wire.ExtensionTypeRequiredCapabilities:
			rc, err := requiredCapabilities(exts)
			if err != nil {
				return err
			}
			for _, x := range rc.ExtensionTypes {
				if x > wire.ExtensionTypeExternalSenders || x == 0 {
					return fmt.Errorf("%w: required extension %d", ErrUnsupported, x)
				}
			}
			for _, p := range rc.ProposalTypes {
				if !p.Valid() {
					return fmt.Errorf("%w: required proposal type %d", ErrUnsupported, p)
				}
			}
		case wire.ExtensionTypeExternalSenders:
			if _, err := externalSenders(exts); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkResumptionJoin applies the §12.4.3.1 rules for a Welcome that names
// a reinit or branch resumption PSK: the new group is in epoch 1 and, when
// the prior group is known, its parameters match.
func checkResumptionJoin(cfg *config, gs *wire.GroupSecrets, gi *wire.GroupInfo) error {
	for _, p := range gs.PSKs {
		if p.PSKType != wire.PSKTypeResumption || p.Usage == wire.ResumptionPSKUsageApplication {
			continue
		}
		if gi.GroupContext.Epoch != 1 {
			return fmt.Errorf("%w: reinit/branch welcome for epoch %d", ErrInvalidWelcome, gi.GroupContext.Epoch)
		}
		prior := priorGroup(cfg, p.PSKGroupID)
		if prior == nil {
			continue
		}
		ctx := &gi.GroupContext
		switch p.Usage {
		case wire.ResumptionPSKUsageBranch:
			if ctx.Version != prior.ctx.Version || ctx.CipherSuite != prior.ctx.CipherSuite {
				return fmt.Errorf("%w: branch changes the version or suite", ErrInvalidWelcome)
			}
		case wire.ResumptionPSKUsageReInit:
			ri := prior.reinit
			if ri == nil || p.PSKEpoch != prior.ctx.Epoch {
				return fmt.Errorf("%w: prior group did not commit a ReInit", ErrInvalidWelcome)
			}
			if !bytes.Equal(ctx.GroupID, ri.GroupID) || ctx.Version != ri.Version || ctx.CipherSuite != ri.CipherSuite ||
				!bytes.Equal(encodeExtensions(ctx.Extensions), encodeExtensions(ri.Extensions)) {
				return fmt.Errorf("%w: group differs from the ReInit proposal", ErrInvalidWelcome)
			}
		}
	}
	return nil
}

func encodeExtensions(exts []wire.Extension) []byte {
	return wire.Encode(&wire.GroupContextExtensions{Extensions: exts})
}
