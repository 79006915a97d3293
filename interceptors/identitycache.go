package interceptors

import (
	"hash/maphash"
	"sync/atomic"

	"google.golang.org/grpc/peer"
)

// identityCacheSlots is the number of connections an identityCache
// remembers at once.
const identityCacheSlots = 64

// identityCache remembers the identity of recent connections so that a call
// does not format its remote address (nor read its certificate) again. It
// is keyed by the *peer.Peer pointer: a gRPC server creates one per
// connection and every stream of that connection carries the same one, and
// a cached entry holds its pointer, so the address cannot be reused by
// another peer while cached. A peer built per call (an in-process
// transport, a test) simply misses. The cache has a fixed number of slots
// chosen by the pointer's hash; a collision only costs a recomputation, and
// it keeps at most identityCacheSlots closed connections' peers alive.
type identityCache struct {
	seed  maphash.Seed
	slots [identityCacheSlots]atomic.Pointer[cachedIdentity]
}

type cachedIdentity struct {
	p  *peer.Peer
	id Identity
}

func newIdentityCache() *identityCache { return &identityCache{seed: maphash.MakeSeed()} }

// get returns the identity of p, a pointer to an immutable value (stored in
// a context without another allocation).
func (c *identityCache) get(p *peer.Peer) *Identity {
	if p == nil {
		return &Identity{}
	}
	s := &c.slots[maphash.Comparable(c.seed, p)%identityCacheSlots]
	if e := s.Load(); e != nil && e.p == p {
		return &e.id
	}
	e := &cachedIdentity{p: p, id: IdentityOf(p)}
	s.Store(e)
	return &e.id
}
