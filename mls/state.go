package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/tree"
	"github.com/agwproject/agw/mls/wire"
)

// stateMagic starts every persisted state; the last byte is the format
// version.
var stateMagic = []byte("agw-mls-state\x01")

// MarshalState serialises the whole group state, private keys included,
// so that UnmarshalState can restore it. The caller must encrypt it at
// rest. A pending commit is not saved (merge or clear it first), nor are
// the options that hold functions (credential validator, clock): pass
// them again to UnmarshalState.
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
	nodes := make([]tree.NodeIndex, 0, len(g.priv.Keys))
	for x := range g.priv.Keys {
		nodes = append(nodes, x)
	}
	slices.Sort(nodes)
	w.Vector(func(w *codec.Writer) {
		for _, x := range nodes {
			w.U32(uint32(x))
			w.Opaque(g.priv.Keys[x])
		}
	})
	for _, b := range g.sec.list() {
		w.Opaque(*b)
	}
	w.Opaque(g.interim)
	w.Opaque(g.confTag)
	g.f.keys.marshal(w)
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
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	return b, nil
}

func writeMap(w *codec.Writer, m map[string][]byte) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
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

// list returns pointers to every secret, in a fixed order.
func (e *epochSecrets) list() []*[]byte {
	return []*[]byte{&e.joiner, &e.welcome, &e.senderData, &e.encryption, &e.exporter, &e.external,
		&e.confirmation, &e.membership, &e.resumption, &e.authentication, &e.init}
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
	return g, nil
}

func unmarshalState(state []byte) (*Group, error) {
	state = append([]byte(nil), state...)
	r := codec.NewReader(state)
	if m := r.Raw(len(stateMagic)); m == nil || string(m) != string(stateMagic) {
		return nil, fmt.Errorf("not a group state")
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
	sec := &epochSecrets{}
	for _, b := range sec.list() {
		*b = r.OpaqueCopy()
	}
	interim := r.OpaqueCopy()
	confTag := r.OpaqueCopy()
	keys := unmarshalRatchets(r)
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
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if cfg.padding < 0 || cfg.padding > 1<<16 || cfg.keepResumption < 0 || cfg.keepResumption > 1<<16 {
		return nil, fmt.Errorf("implausible configuration")
	}
	for _, b := range sec.list() {
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
	if keys.leaves != t.LeafCount() {
		return nil, fmt.Errorf("secret tree of %d leaves for a tree of %d", keys.leaves, t.LeafCount())
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
	g.installEpoch(ctx, t, priv, sec, interim, confTag)
	keys.s = s
	g.f.keys = keys
	g.proposals = props
	g.pendingUpdates = updates
	g.resumption = resumption
	g.removed = removed
	g.reinit = reinit
	return g, nil
}

// marshal writes the secret tree state.
func (r *ratchets) marshal(w *codec.Writer) {
	w.U32(r.leaves)
	nodes := make([]tree.NodeIndex, 0, len(r.nodes))
	for x := range r.nodes {
		nodes = append(nodes, x)
	}
	slices.Sort(nodes)
	w.Vector(func(w *codec.Writer) {
		for _, x := range nodes {
			w.U32(uint32(x))
			w.Opaque(r.nodes[x])
		}
	})
	leaves := make([]uint32, 0, len(r.hs))
	for l := range r.hs {
		leaves = append(leaves, l)
	}
	slices.Sort(leaves)
	w.Vector(func(w *codec.Writer) {
		for _, l := range leaves {
			w.U32(l)
			for _, rt := range []*ratchet{r.hs[l], r.app[l]} {
				w.U32(rt.next)
				w.Opaque(rt.secret)
				gens := make([]uint32, 0, len(rt.skipped))
				for g := range rt.skipped {
					gens = append(gens, g)
				}
				slices.Sort(gens)
				w.Vector(func(w *codec.Writer) {
					for _, g := range gens {
						w.U32(g)
						w.Opaque(rt.skipped[g].key)
						w.Opaque(rt.skipped[g].nonce)
					}
				})
			}
		}
	})
}

func unmarshalRatchets(r *codec.Reader) *ratchets {
	out := &ratchets{leaves: r.U32(), nodes: map[tree.NodeIndex][]byte{}, hs: map[uint32]*ratchet{}, app: map[uint32]*ratchet{}}
	r.Elements(func(r *codec.Reader) {
		x := tree.NodeIndex(r.U32())
		out.nodes[x] = r.OpaqueCopy()
	})
	r.Elements(func(r *codec.Reader) {
		l := r.U32()
		for i := 0; i < 2; i++ {
			rt := &ratchet{next: r.U32(), secret: r.OpaqueCopy(), skipped: map[uint32]keyNonce{}}
			r.Elements(func(r *codec.Reader) {
				g := r.U32()
				rt.skipped[g] = keyNonce{key: r.OpaqueCopy(), nonce: r.OpaqueCopy()}
			})
			if i == 0 {
				out.hs[l] = rt
			} else {
				out.app[l] = rt
			}
		}
	})
	if out.leaves == 0 || out.leaves&(out.leaves-1) != 0 {
		r.Failf("secret tree of %d leaves", out.leaves)
	}
	return out
}
