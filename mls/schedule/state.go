package schedule

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/suite"
)

// ErrState: an encoded SecretTree state is malformed or inconsistent.
var ErrState = errors.New("mls schedule: invalid secret tree state")

const stateVersion = 1

// MarshalBinary encodes the tree's current state (the undivided node
// secrets, each used leaf's ratchets with their generation and the kept
// out-of-order keys, and the options) for persistence. The encoding holds
// secrets: store it as such.
func (t *SecretTree) MarshalBinary() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := codec.NewWriter(64 + len(t.nodes)*(t.s.Nh()+5) + len(t.ratchets)*2*(t.s.Nh()+16))
	w.U8(stateVersion)
	w.U16(uint16(t.s.ID()))
	w.U32(t.leaves)
	w.U32(t.cfg.window)
	w.U32(t.cfg.maxJump)
	nodes := slices.Sorted(maps.Keys(t.nodes))
	w.Vector(func(w *codec.Writer) {
		for _, x := range nodes {
			w.U32(x)
			w.Opaque(t.nodes[x])
		}
	})
	leaves := slices.Sorted(maps.Keys(t.ratchets))
	w.Vector(func(w *codec.Writer) {
		for _, l := range leaves {
			w.U32(l)
			for _, r := range t.ratchets[l] {
				w.Opaque(r.secret)
				w.U32(r.next)
				w.Bool(r.exhausted)
				gens := slices.Sorted(maps.Keys(r.skipped))
				w.Vector(func(w *codec.Writer) {
					for _, g := range gens {
						k := r.skipped[g]
						w.U32(g)
						w.Opaque(k.Key)
						w.Opaque(k.Nonce)
					}
				})
			}
		}
	})
	return w.Bytes()
}

// UnmarshalSecretTree restores a SecretTree from MarshalBinary output for
// the same suite. It checks the state's consistency: every leaf has either
// ratchets or exactly one stored ancestor secret, and every length matches
// the suite.
func UnmarshalSecretTree(s *suite.Suite, data []byte) (*SecretTree, error) {
	r := codec.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != stateVersion {
		return nil, fmt.Errorf("%w: version %d", ErrState, v)
	}
	if id := r.U16(); r.Err() == nil && suite.ID(id) != s.ID() {
		return nil, fmt.Errorf("%w: state is for suite %d, not %d", ErrState, id, s.ID())
	}
	leaves := r.U32()
	cfg := config{window: r.U32(), maxJump: r.U32()}
	if r.Err() == nil && (leaves == 0 || leaves > 1<<31) {
		return nil, fmt.Errorf("%w: %d leaves", ErrState, leaves)
	}
	width := uint32(1) << bits.Len32(leaves-1)
	t := &SecretTree{
		s: s, leaves: leaves, root: width - 1, cfg: cfg,
		nodes: map[uint32][]byte{}, ratchets: map[uint32]*[2]*ratchet{},
	}
	r.Elements(func(r *codec.Reader) {
		x, secret := r.U32(), r.OpaqueCopy()
		switch {
		case r.Err() != nil:
		case x >= 2*width-1:
			r.Failf("node %d outside a tree of %d leaves", x, leaves)
		case len(secret) != s.Nh():
			r.Failf("node secret of %d bytes", len(secret))
		case t.nodes[x] != nil:
			r.Failf("node %d twice", x)
		default:
			t.nodes[x] = secret
		}
	})
	r.Elements(func(r *codec.Reader) {
		leaf := r.U32()
		var rs [2]*ratchet
		for i := range rs {
			rt := &ratchet{s: s, secret: r.OpaqueCopy(), next: r.U32(), exhausted: r.Bool()}
			r.Elements(func(r *codec.Reader) {
				g, key, nonce := r.U32(), r.OpaqueCopy(), r.OpaqueCopy()
				switch {
				case r.Err() != nil:
				case len(key) != s.AEADKeySize() || len(nonce) != s.AEADNonceSize():
					r.Failf("key/nonce of %d/%d bytes", len(key), len(nonce))
				case g >= rt.next && !(rt.exhausted && g == rt.next):
					r.Failf("kept key of generation %d not behind the ratchet at %d", g, rt.next)
				default:
					if rt.skipped == nil {
						rt.skipped = map[uint32]Key{}
					}
					if _, dup := rt.skipped[g]; dup {
						r.Failf("generation %d twice", g)
					}
					rt.skipped[g] = Key{Generation: g, Key: key, Nonce: nonce}
				}
			})
			if r.Err() == nil && len(rt.secret) != s.Nh() {
				r.Failf("ratchet secret of %d bytes", len(rt.secret))
			}
			rs[i] = rt
		}
		switch {
		case r.Err() != nil:
		case leaf >= leaves:
			r.Failf("ratchets for leaf %d of %d", leaf, leaves)
		case t.ratchets[leaf] != nil:
			r.Failf("ratchets for leaf %d twice", leaf)
		default:
			t.ratchets[leaf] = &rs
		}
	})
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	if err := t.checkCoverage(); err != nil {
		return nil, err
	}
	return t, nil
}

// checkCoverage verifies that every leaf position of the tree (padding
// leaves included) is covered exactly once: by its own ratchets or by one
// stored secret on its path to the root. It runs in O((nodes + ratchets) ·
// depth), independent of the tree's width.
func (t *SecretTree) checkCoverage() error {
	var covered uint64
	for x := range t.nodes {
		for y := x; y != t.root; {
			y = parentNode(y)
			if _, ok := t.nodes[y]; ok {
				return fmt.Errorf("%w: stored secrets for node %d and its ancestor %d", ErrState, x, y)
			}
		}
		covered += 1 << bits.TrailingZeros32(^x) // a node at level k spans 2^k leaves
	}
	for leaf := range t.ratchets {
		for y := 2 * leaf; ; y = parentNode(y) {
			if _, ok := t.nodes[y]; ok {
				return fmt.Errorf("%w: leaf %d has ratchets and a stored path secret", ErrState, leaf)
			}
			if y == t.root {
				break
			}
		}
		covered++
	}
	if width := uint64(t.root) + 1; covered != width {
		return fmt.Errorf("%w: secrets cover %d of %d leaf positions", ErrState, covered, width)
	}
	return nil
}

// parentNode is the parent of array-tree node x (RFC 9420 §4) in a tree
// wide enough to hold it.
func parentNode(x uint32) uint32 {
	k := uint(bits.TrailingZeros32(^x)) // level of x
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ b<<(k+1)
}
