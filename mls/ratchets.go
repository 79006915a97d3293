package mls

import (
	"fmt"
	"slices"

	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/tree"
)

// Limits of the per-sender hash ratchets (RFC 9420 §9.4 leaves them to the
// application).
const (
	// maxForwardRatchet is how far ahead of the next expected generation a
	// received message may be.
	maxForwardRatchet = 1 << 12
	// maxSkippedKeys is how many keys of skipped generations a ratchet keeps
	// for out-of-order messages.
	maxSkippedKeys = 256
)

// keyNonce is one generation's AEAD key and nonce.
type keyNonce struct {
	key, nonce []byte
}

// ratchet is one sender's handshake or application hash ratchet (§9.1).
type ratchet struct {
	next    uint32              // generation whose secret is held
	secret  []byte              // secret of generation next
	skipped map[uint32]keyNonce // keys derived but not yet used
}

// ratchets is the secret tree of an epoch (§9) with lazily derived leaf
// ratchets. Consumed secrets are deleted for forward secrecy.
type ratchets struct {
	s      *suite.Suite
	leaves uint32                    // leaf count of the (full) tree
	nodes  map[tree.NodeIndex][]byte // secrets of tree nodes not yet expanded
	hs     map[uint32]*ratchet
	app    map[uint32]*ratchet
}

func newRatchets(s *suite.Suite, encryptionSecret []byte, leaves uint32) *ratchets {
	r := &ratchets{
		s:      s,
		leaves: leaves,
		nodes:  map[tree.NodeIndex][]byte{},
		hs:     map[uint32]*ratchet{},
		app:    map[uint32]*ratchet{},
	}
	r.nodes[tree.Root(leaves)] = append([]byte(nil), encryptionSecret...)
	return r
}

// leafRatchets derives (once) the two ratchets of leaf l.
func (r *ratchets) leafRatchets(l uint32) error {
	if l >= r.leaves {
		return fmt.Errorf("%w: leaf %d outside the secret tree", ErrUnknownSender, l)
	}
	if _, ok := r.hs[l]; ok {
		return nil
	}
	target := tree.LeafIndex(l).Node()
	// Walk from the target up to the nearest ancestor still holding a secret.
	path := []tree.NodeIndex{target}
	x := target
	for {
		if _, ok := r.nodes[x]; ok {
			break
		}
		p, ok := tree.Parent(x, r.leaves)
		if !ok {
			return fmt.Errorf("%w: secret for leaf %d already consumed", ErrGenerationReused, l)
		}
		x = p
		path = append(path, x)
	}
	// Derive down from the ancestor, keeping the siblings' secrets.
	for i := len(path) - 1; i > 0; i-- {
		p := path[i]
		sec := r.nodes[p]
		delete(r.nodes, p)
		left, _ := tree.Left(p)
		right, _ := tree.Right(p)
		r.nodes[left] = r.s.ExpandWithLabel(sec, "tree", []byte("left"), r.s.Nh())
		r.nodes[right] = r.s.ExpandWithLabel(sec, "tree", []byte("right"), r.s.Nh())
		clear(sec)
	}
	sec := r.nodes[target]
	delete(r.nodes, target)
	r.hs[l] = &ratchet{secret: r.s.ExpandWithLabel(sec, "handshake", nil, r.s.Nh()), skipped: map[uint32]keyNonce{}}
	r.app[l] = &ratchet{secret: r.s.ExpandWithLabel(sec, "application", nil, r.s.Nh()), skipped: map[uint32]keyNonce{}}
	clear(sec)
	return nil
}

func (r *ratchets) ratchet(l uint32, handshake bool) (*ratchet, error) {
	if err := r.leafRatchets(l); err != nil {
		return nil, err
	}
	if handshake {
		return r.hs[l], nil
	}
	return r.app[l], nil
}

// advance derives the key of generation rt.next and moves to the next one.
func (r *ratchets) advance(rt *ratchet) keyNonce {
	g := rt.next
	kn := keyNonce{
		key:   r.s.DeriveTreeSecret(rt.secret, "key", g, r.s.AEADKeySize()),
		nonce: r.s.DeriveTreeSecret(rt.secret, "nonce", g, r.s.AEADNonceSize()),
	}
	nextSecret := r.s.DeriveTreeSecret(rt.secret, "secret", g, r.s.Nh())
	clear(rt.secret)
	rt.secret = nextSecret
	rt.next++
	return kn
}

// next returns the generation, key and nonce for the next message sent by
// leaf l; the caller owns (and clears) the returned slices.
func (r *ratchets) next(l uint32, handshake bool) (uint32, []byte, []byte, error) {
	rt, err := r.ratchet(l, handshake)
	if err != nil {
		return 0, nil, nil, err
	}
	if rt.next == ^uint32(0) {
		return 0, nil, nil, fmt.Errorf("%w: ratchet exhausted", ErrGenerationReused)
	}
	g := rt.next
	kn := r.advance(rt)
	return g, kn.key, kn.nonce, nil
}

// get returns copies of the key and nonce of generation gen of leaf l
// without consuming them (see consume).
func (r *ratchets) get(l uint32, handshake bool, gen uint32) ([]byte, []byte, error) {
	rt, err := r.ratchet(l, handshake)
	if err != nil {
		return nil, nil, err
	}
	if gen < rt.next {
		kn, ok := rt.skipped[gen]
		if !ok {
			return nil, nil, fmt.Errorf("%w: leaf %d generation %d", ErrGenerationReused, l, gen)
		}
		return append([]byte(nil), kn.key...), append([]byte(nil), kn.nonce...), nil
	}
	if gen-rt.next > maxForwardRatchet {
		return nil, nil, fmt.Errorf("%w: generation %d too far ahead of %d", ErrDecrypt, gen, rt.next)
	}
	for rt.next <= gen {
		g := rt.next
		kn := r.advance(rt)
		if gen-g < maxSkippedKeys {
			rt.skipped[g] = kn
		} else {
			clear(kn.key)
			clear(kn.nonce)
		}
	}
	// Bound the memory of skipped keys: drop the oldest.
	if len(rt.skipped) > maxSkippedKeys {
		gens := make([]uint32, 0, len(rt.skipped))
		for g := range rt.skipped {
			gens = append(gens, g)
		}
		slices.Sort(gens)
		for _, g := range gens[:len(gens)-maxSkippedKeys] {
			clear(rt.skipped[g].key)
			delete(rt.skipped, g)
		}
	}
	kn := rt.skipped[gen]
	return append([]byte(nil), kn.key...), append([]byte(nil), kn.nonce...), nil
}

// consume deletes the key of generation gen of leaf l after a successful
// decryption, so the same generation is refused afterwards.
func (r *ratchets) consume(l uint32, handshake bool, gen uint32) {
	rt, err := r.ratchet(l, handshake)
	if err != nil {
		return
	}
	if kn, ok := rt.skipped[gen]; ok {
		clear(kn.key)
		clear(kn.nonce)
		delete(rt.skipped, gen)
	}
}
