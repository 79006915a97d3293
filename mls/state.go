package mls

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// stateMagic starts every persisted state; its last byte is the format
// version. Version 1 (before the secret tree moved to package schedule)
// is not read.
var stateMagic = []byte("agw-mls-state\x03")

// stateV2 is the format before credential rotation (no signature keys of
// pending Update proposals); it is still read.
const stateV2 = 2

// MarshalState serialises the whole group state, private keys included,
// so that UnmarshalState can restore it. The caller must encrypt it at
// rest. A pending commit is not saved (merge or clear it first), nor are
// the options that hold functions (credential validator, successor
// check, clock): pass them again to UnmarshalState. Format 3 adds the new
// signature keys of pending Update proposals (WithLeafCredential); format
// 2 is still read.
func (g *Group) MarshalState() ([]byte, error) {
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	w := codec.NewWriter(4096)
	w.Raw(stateMagic)
	w.U16(uint16(g.s.ID()))
	g.ctx.Marshal(w)
	rt := g.tree.Encode()
	rt.Marshal(w)
	w.U32(uint32(g.priv.Leaf))
	w.Opaque(g.sigPriv)
	nodes := slices.Sorted(maps.Keys(g.priv.Keys))
	w.Vector(func(w *codec.Writer) {
		for _, x := range nodes {
			w.U32(uint32(x))
			w.Opaque(g.priv.Keys[x])
		}
	})
	for _, b := range secretList(g.sec) {
		w.Opaque(*b)
	}
	w.Opaque(g.interim)
	w.Opaque(g.confTag)
	keys, err := g.f.keys.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	w.Opaque(keys)
	w.Vector(func(w *codec.Writer) {
		for _, cp := range g.proposals {
			w.Opaque(cp.ref)
			cp.proposal.Marshal(w)
			cp.sender.Marshal(w)
		}
	})
	writeMap(w, g.pendingUpdates)
	w.Vector(func(w *codec.Writer) {
		for _, r := range g.resumption {
			w.U64(r.epoch)
			w.Opaque(r.secret)
		}
	})
	w.Bool(g.removed)
	w.Optional(g.reinit != nil, func(w *codec.Writer) { g.reinit.Marshal(w) })
	w.Bool(g.cfg.noLifetimeCheck)
	w.Bool(g.cfg.encryptHandshake)
	w.U32(uint32(g.cfg.padding))
	w.U32(uint32(g.cfg.keepResumption))
	w.Bool(g.cfg.noTreeExtension)
	w.Bool(g.cfg.noExternalPub)
	writeMap(w, g.cfg.psks)
	writeMap(w, g.pendingSigs)
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	return b, nil
}

func writeMap(w *codec.Writer, m map[string][]byte) {
	keys := slices.Sorted(maps.Keys(m))
	w.Vector(func(w *codec.Writer) {
		for _, k := range keys {
			w.Opaque([]byte(k))
			w.Opaque(m[k])
		}
	})
}

func readMap(r *codec.Reader) map[string][]byte {
	var m map[string][]byte
	r.Elements(func(r *codec.Reader) {
		k := r.OpaqueCopy()
		v := r.OpaqueCopy()
		if m == nil {
			m = map[string][]byte{}
		}
		m[string(k)] = v
	})
	return m
}

// UnmarshalState restores a group saved by MarshalState. Options add what
// is not persisted (WithCredentialValidator, WithClock) and may override
// behaviour options.
func UnmarshalState(state []byte, opts ...Option) (*Group, error) {
	g, err := unmarshalState(state)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	for _, o := range opts {
		if o != nil {
			o(&g.cfg)
		}
	}
	g.cfg.leafCred, g.cfg.leafSigPriv = nil, nil // per call only
	return g, nil
}

func unmarshalState(state []byte) (*Group, error) {
	state = append([]byte(nil), state...)
	r := codec.NewReader(state)
	m := r.Raw(len(stateMagic))
	if m == nil || string(m[:len(m)-1]) != string(stateMagic[:len(stateMagic)-1]) {
		return nil, fmt.Errorf("not a group state")
	}
	version := m[len(m)-1]
	if want := stateMagic[len(stateMagic)-1]; version != want && version != stateV2 {
		return nil, fmt.Errorf("state format version %d, this version reads %d and %d", version, stateV2, want)
	}
	s, err := suiteOf(wire.CipherSuite(r.U16()))
	if err != nil {
		return nil, err
	}
	var ctx wire.GroupContext
	ctx.Unmarshal(r)
	var rt wire.RatchetTree
	rt.Unmarshal(r)
	leaf := tree.LeafIndex(r.U32())
	sigPriv := r.OpaqueCopy()
	priv := &tree.Private{Leaf: leaf, Keys: map[tree.NodeIndex][]byte{}}
	r.Elements(func(r *codec.Reader) {
		x := tree.NodeIndex(r.U32())
		priv.Keys[x] = r.OpaqueCopy()
	})
	sec := &epochSecrets{Suite: s}
	for _, b := range secretList(sec) {
		*b = r.OpaqueCopy()
	}
	interim := r.OpaqueCopy()
	confTag := r.OpaqueCopy()
	keysState := r.OpaqueCopy()
	var props []cachedProposal
	r.Elements(func(r *codec.Reader) {
		var cp cachedProposal
		cp.ref = r.OpaqueCopy()
		cp.proposal = new(wire.Proposal)
		cp.proposal.Unmarshal(r)
		cp.sender.Unmarshal(r)
		props = append(props, cp)
	})
	updates := readMap(r)
	var resumption []epochPSK
	r.Elements(func(r *codec.Reader) {
		resumption = append(resumption, epochPSK{epoch: r.U64(), secret: r.OpaqueCopy()})
	})
	removed := r.Bool()
	var reinit *wire.ReInit
	r.Optional(func(r *codec.Reader) {
		reinit = new(wire.ReInit)
		reinit.Unmarshal(r)
	})
	cfg := newConfig(nil)
	cfg.noLifetimeCheck = r.Bool()
	cfg.encryptHandshake = r.Bool()
	cfg.padding = int(r.U32())
	cfg.keepResumption = int(r.U32())
	cfg.noTreeExtension = r.Bool()
	cfg.noExternalPub = r.Bool()
	cfg.psks = readMap(r)
	var sigs map[string][]byte
	if version > stateV2 {
		sigs = readMap(r)
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if cfg.padding < 0 || cfg.padding > 1<<16 || cfg.keepResumption < 0 || cfg.keepResumption > 1<<16 {
		return nil, fmt.Errorf("implausible configuration")
	}
	for _, b := range secretList(sec) {
		if len(*b) != s.Nh() {
			return nil, fmt.Errorf("epoch secret of %d bytes", len(*b))
		}
	}
	if wire.CipherSuite(s.ID()) != ctx.CipherSuite {
		return nil, fmt.Errorf("suite mismatch")
	}
	t, err := tree.Decode(s, rt)
	if err != nil {
		return nil, err
	}
	if t.Leaf(leaf) == nil && !removed {
		return nil, fmt.Errorf("own leaf %d is blank", leaf)
	}
	keys, err := schedule.UnmarshalSecretTree(s, keysState)
	if err != nil {
		return nil, err
	}
	if keys.Leaves() != t.LeafCount() {
		return nil, fmt.Errorf("secret tree of %d leaves for a tree of %d", keys.Leaves(), t.LeafCount())
	}
	if !removed {
		if err := priv.Check(t); err != nil {
			return nil, err
		}
	}
	cfgCopy := cfg
	g, err := newGroupState(s, &cfgCopy, sigPriv)
	if err != nil {
		return nil, err
	}
	if l := t.Leaf(leaf); l != nil && !bytes.Equal(l.SignatureKey, g.signer.PublicKey()) {
		return nil, fmt.Errorf("signature key does not match the own leaf")
	}
	if err := g.installEpoch(ctx, t, priv, sec, interim, confTag); err != nil {
		return nil, err
	}
	g.f.keys = keys
	g.proposals = props
	g.pendingUpdates = updates
	for k := range sigs {
		if _, ok := updates[k]; !ok {
			return nil, fmt.Errorf("signature key of an unknown update")
		}
	}
	g.pendingSigs = sigs
	g.resumption = resumption
	g.removed = removed
	g.reinit = reinit
	return g, nil
}
