package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/agwproject/agw/mls/suite"
)

// Errors of the secret tree. They are wrapped; compare with errors.Is.
var (
	// ErrGenerationReused: the key of this generation was already used
	// (consumed) and deleted.
	ErrGenerationReused = errors.New("mls schedule: generation already used")
	// ErrGenerationTooOld: the generation is behind the out-of-order window
	// and its key is gone.
	ErrGenerationTooOld = errors.New("mls schedule: generation older than the out-of-order window")
	// ErrGenerationTooFar: the generation is further ahead of the ratchet
	// than the maximum forward jump.
	ErrGenerationTooFar = errors.New("mls schedule: generation too far ahead")
	// ErrGenerationExhausted: the ratchet reached the last uint32 generation.
	ErrGenerationExhausted = errors.New("mls schedule: ratchet generations exhausted")
	// ErrLeafOutOfRange: the leaf index is not a leaf of the tree.
	ErrLeafOutOfRange = errors.New("mls schedule: leaf index out of range")
)

// Defaults for the out-of-order tolerance of the ratchets.
const (
	// DefaultWindow is how many generations behind the newest one a ratchet
	// keeps unused keys for out-of-order messages.
	DefaultWindow = 1000
	// DefaultMaxForwardJump is the largest number of generations a ratchet
	// skips ahead for one message.
	DefaultMaxForwardJump = 10000
)

// RatchetType selects one of the two ratchets of a leaf (RFC 9420 §9.1).
type RatchetType uint8

// The ratchet types.
const (
	Handshake RatchetType = iota
	Application
)

func (t RatchetType) String() string {
	if t == Handshake {
		return "handshake"
	}
	return "application"
}

// Key is the AEAD key and nonce of one ratchet generation.
type Key struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

type config struct {
	window  uint32
	maxJump uint32
}

// Option configures a SecretTree.
type Option func(*config)

// WithWindow sets how many generations behind the newest one the ratchets
// keep keys for out-of-order messages (default DefaultWindow; 0 keeps none).
func WithWindow(n uint32) Option { return func(c *config) { c.window = n } }

// WithMaxForwardJump sets how many generations a ratchet may skip forward
// for one message (default DefaultMaxForwardJump).
func WithMaxForwardJump(n uint32) Option { return func(c *config) { c.maxJump = n } }

// SecretTree is the secret tree of RFC 9420 §9 for one epoch. It derives
// node secrets lazily: only the nodes on the path from the root to a leaf
// that is used are computed, and a node's secret is deleted once both its
// children exist, as §9.2 requires. Each leaf then has a handshake and an
// application ratchet. A SecretTree is safe for concurrent use.
type SecretTree struct {
	mu       sync.Mutex
	s        *suite.Suite
	leaves   uint32
	root     uint32
	nodes    map[uint32][]byte // frontier: secrets not yet split or turned into ratchets
	ratchets map[uint32]*[2]*ratchet
	cfg      config
}

// NewSecretTree creates the secret tree over leaves leaves (the ratchet
// tree's leaf count) rooted at encryption_secret, which is copied.
func NewSecretTree(s *suite.Suite, encryptionSecret []byte, leaves uint32, opts ...Option) (*SecretTree, error) {
	if err := checkLen(s, "encryption_secret", encryptionSecret); err != nil {
		return nil, err
	}
	if leaves == 0 || leaves > 1<<31 {
		return nil, fmt.Errorf("%w: tree of %d leaves", ErrLeafOutOfRange, leaves)
	}
	width := uint32(1) << bits.Len32(leaves-1) // leaves rounded up to a power of two
	t := &SecretTree{
		s:        s,
		leaves:   leaves,
		root:     width - 1,
		nodes:    map[uint32][]byte{width - 1: append([]byte(nil), encryptionSecret...)},
		ratchets: map[uint32]*[2]*ratchet{},
		cfg:      config{window: DefaultWindow, maxJump: DefaultMaxForwardJump},
	}
	for _, o := range opts {
		o(&t.cfg)
	}
	return t, nil
}

// Leaves returns the number of leaves.
func (t *SecretTree) Leaves() uint32 { return t.leaves }

// Next returns the key for the next generation of the leaf's ratchet and
// advances it; a sender uses it to encrypt.
func (t *SecretTree) Next(leaf uint32, typ RatchetType) (Key, error) {
	return t.with(leaf, typ, func(r *ratchet) (Key, error) { return r.take(r.next, t.cfg, true) })
}

// Get returns the key of the given generation of the leaf's ratchet and
// deletes it, so a second Get of the same generation fails with
// ErrGenerationReused. Generations ahead of the ratchet are reached by
// ratcheting forward (at most the maximum forward jump), keeping the
// skipped keys within the out-of-order window.
func (t *SecretTree) Get(leaf uint32, typ RatchetType, generation uint32) (Key, error) {
	return t.with(leaf, typ, func(r *ratchet) (Key, error) { return r.take(generation, t.cfg, true) })
}

// with runs f on the leaf's ratchet under the tree's lock, naming the
// ratchet in f's error.
func (t *SecretTree) with(leaf uint32, typ RatchetType, f func(*ratchet) (Key, error)) (Key, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return Key{}, err
	}
	k, err := f(r)
	if err != nil {
		return Key{}, fmt.Errorf("leaf %d %s ratchet: %w", leaf, typ, err)
	}
	return k, nil
}

// Peek returns the key of the given generation of the leaf's ratchet
// without changing the tree: the ratchet does not move and no kept key is
// deleted or dropped. A receiver peeks, decrypts, and calls Consume only
// once the content authenticated, so a forged or corrupted message can
// neither burn a key nor push the ratchet (and its out-of-order window)
// forward. Peek fails as Get would (ErrGenerationReused,
// ErrGenerationTooOld, ErrGenerationTooFar, ErrLeafOutOfRange). The
// returned slices are the caller's.
func (t *SecretTree) Peek(leaf uint32, typ RatchetType, generation uint32) (Key, error) {
	return t.with(leaf, typ, func(r *ratchet) (Key, error) { return r.peek(generation, t.cfg) })
}

// Consume marks the key of the given generation as used, exactly as Get
// does but without returning it: the key is deleted, a generation ahead of
// the ratchet moves it forward (keeping the skipped keys within the
// window), and a second Consume or Get of the generation fails with
// ErrGenerationReused. It is the second half of Peek.
func (t *SecretTree) Consume(leaf uint32, typ RatchetType, generation uint32) error {
	_, err := t.with(leaf, typ, func(r *ratchet) (Key, error) { return r.take(generation, t.cfg, false) })
	return err
}

// Kept returns how many unused keys of past generations the leaf's
// ratchet holds for out-of-order messages (0 for a leaf not used yet).
func (t *SecretTree) Kept(leaf uint32, typ RatchetType) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rs, ok := t.ratchets[leaf]; ok && typ <= Application {
		return len(rs[typ].skipped)
	}
	return 0
}

// NextGeneration returns the generation Next would use for the leaf's
// ratchet, deriving the leaf's ratchets if needed.
func (t *SecretTree) NextGeneration(leaf uint32, typ RatchetType) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return 0, err
	}
	return r.next, nil
}

// ratchet returns the leaf's ratchet, deriving the path from the nearest
// stored ancestor secret down to the leaf on first use.
func (t *SecretTree) ratchet(leaf uint32, typ RatchetType) (*ratchet, error) {
	if leaf >= t.leaves {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d leaves", ErrLeafOutOfRange, leaf, t.leaves)
	}
	if typ > Application {
		return nil, fmt.Errorf("mls schedule: unknown ratchet type %d", typ)
	}
	if rs, ok := t.ratchets[leaf]; ok {
		return rs[typ], nil
	}
	s := t.s
	target := 2 * leaf
	x := t.root
	for x != target {
		level := bits.TrailingZeros32(^x)
		left, right := x^(1<<(level-1)), x^(3<<(level-1))
		if secret, ok := t.nodes[x]; ok {
			t.nodes[left] = s.ExpandWithLabel(secret, "tree", []byte("left"), s.Nh())
			t.nodes[right] = s.ExpandWithLabel(secret, "tree", []byte("right"), s.Nh())
			clear(secret)
			delete(t.nodes, x)
		}
		if target < x {
			x = left
		} else {
			x = right
		}
	}
	secret, ok := t.nodes[target]
	if !ok { // cannot happen: a leaf without ratchets keeps a frontier ancestor
		return nil, fmt.Errorf("mls schedule: secret tree lost the secret of leaf %d", leaf)
	}
	rs := &[2]*ratchet{
		{s: s, secret: s.ExpandWithLabel(secret, "handshake", nil, s.Nh())},
		{s: s, secret: s.ExpandWithLabel(secret, "application", nil, s.Nh())},
	}
	clear(secret)
	delete(t.nodes, target)
	t.ratchets[leaf] = rs
	return rs[typ], nil
}

// ratchet is one hash ratchet (RFC 9420 §9.1): secret is
// ratchet_secret_[next]; skipped holds the unused keys of generations below
// next that are still inside the window.
type ratchet struct {
	s         *suite.Suite
	secret    []byte
	next      uint32
	exhausted bool
	skipped   map[uint32]Key
}

// advance returns the key of generation next and moves to next+1.
func (r *ratchet) advance() (Key, error) {
	if r.exhausted {
		return Key{}, ErrGenerationExhausted
	}
	s, g := r.s, r.next
	k := Key{
		Generation: g,
		Key:        s.DeriveTreeSecret(r.secret, "key", g, s.AEADKeySize()),
		Nonce:      s.DeriveTreeSecret(r.secret, "nonce", g, s.AEADNonceSize()),
	}
	return k, r.skip()
}

// check reports why generation gen cannot be had from the ratchet, if so;
// kept is whether gen is a key kept for out-of-order messages.
func (r *ratchet) check(gen uint32, cfg config) (kept bool, err error) {
	if gen < r.next || (r.exhausted && gen == r.next) {
		if _, ok := r.skipped[gen]; ok {
			return true, nil
		}
		// Keys are kept for the window generations below the newest one
		// used (next-1, or next once the ratchet is exhausted).
		newest := r.next
		if !r.exhausted {
			newest--
		}
		if newest-gen > cfg.window {
			return false, fmt.Errorf("%w: generation %d, ratchet at %d, window %d", ErrGenerationTooOld, gen, r.next, cfg.window)
		}
		return false, fmt.Errorf("%w: generation %d", ErrGenerationReused, gen)
	}
	if gen-r.next > cfg.maxJump {
		return false, fmt.Errorf("%w: generation %d, ratchet at %d, maximum jump %d", ErrGenerationTooFar, gen, r.next, cfg.maxJump)
	}
	return false, nil
}

// peek derives the key of generation gen without changing the ratchet.
func (r *ratchet) peek(gen uint32, cfg config) (Key, error) {
	kept, err := r.check(gen, cfg)
	if err != nil {
		return Key{}, err
	}
	if kept {
		k := r.skipped[gen]
		return Key{Generation: gen, Key: bytes.Clone(k.Key), Nonce: bytes.Clone(k.Nonce)}, nil
	}
	s, secret := r.s, r.secret
	for g := r.next; g < gen; g++ {
		next := s.DeriveTreeSecret(secret, "secret", g, s.Nh())
		if g != r.next {
			clear(secret)
		}
		secret = next
	}
	k := Key{
		Generation: gen,
		Key:        s.DeriveTreeSecret(secret, "key", gen, s.AEADKeySize()),
		Nonce:      s.DeriveTreeSecret(secret, "nonce", gen, s.AEADNonceSize()),
	}
	if gen != r.next {
		clear(secret)
	}
	return k, nil
}

// take returns the key of generation gen and deletes it, ratcheting
// forward to it if needed; with wantKey false the target generation's key
// is not even derived (Consume after Peek).
func (r *ratchet) take(gen uint32, cfg config, wantKey bool) (Key, error) {
	kept, err := r.check(gen, cfg)
	if err != nil {
		return Key{}, err
	}
	if kept {
		k := r.skipped[gen]
		delete(r.skipped, gen)
		if !wantKey {
			clearKey(k)
			return Key{}, nil
		}
		return k, nil
	}
	for r.next < gen {
		k, err := r.advance()
		if err != nil {
			return Key{}, err
		}
		if gen-k.Generation <= cfg.window {
			if r.skipped == nil {
				r.skipped = map[uint32]Key{}
			}
			r.skipped[k.Generation] = k
		} else {
			clearKey(k)
		}
	}
	var k Key
	if wantKey {
		k, err = r.advance()
	} else {
		err = r.skip()
	}
	if err != nil {
		return Key{}, err
	}
	// Drop keys that fell out of the window.
	for g, old := range r.skipped {
		if gen-g > cfg.window {
			clearKey(old)
			delete(r.skipped, g)
		}
	}
	return k, nil
}

// skip moves the ratchet past generation next without deriving its key.
func (r *ratchet) skip() error {
	if r.exhausted {
		return ErrGenerationExhausted
	}
	s, g := r.s, r.next
	nextSecret := s.DeriveTreeSecret(r.secret, "secret", g, s.Nh())
	clear(r.secret)
	r.secret = nextSecret
	if g == ^uint32(0) {
		r.exhausted = true
	} else {
		r.next++
	}
	return nil
}

func clearKey(k Key) {
	clear(k.Key)
	clear(k.Nonce)
}

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's SenderData (RFC 9420 §6.3.2) from sender_data_secret and
// the message's ciphertext: the sample is the first Nh bytes of the
// ciphertext, or all of it when shorter.
func SenderDataKeyNonce(s *suite.Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte) {
	sample := ciphertext[:min(len(ciphertext), s.Nh())]
	return s.ExpandWithLabel(senderDataSecret, "key", sample, s.AEADKeySize()),
		s.ExpandWithLabel(senderDataSecret, "nonce", sample, s.AEADNonceSize())
}
