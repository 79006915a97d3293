package sidecar

import (
	"math/bits"
	"sync"
)

// bufPool is the mem.BufferPool of message bodies and of received frames
// that span several gRPC buffers. Unlike gRPC's default pool it does not
// clear a buffer it hands out: every user overwrites the whole length it
// asked for (a body is encoded into it, a frame copied into it), so the
// clearing would only cost time (4 KiB for a 1 KiB message).
type bufPool struct {
	classes [bufClasses]sync.Pool
}

const (
	bufMinShift = 8  // smallest class: 256 bytes
	bufClasses  = 15 // largest class: 4 MiB
)

// class returns the size class that holds n bytes, or -1 if none does.
func bufClass(n int) int {
	if n <= 1<<bufMinShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - bufMinShift
	if c >= bufClasses {
		return -1
	}
	return c
}

// Get returns a buffer of length n; its contents are unspecified.
func (p *bufPool) Get(n int) *[]byte {
	c := bufClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.classes[c].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<(c+bufMinShift))
	return &b
}

// Put returns a buffer from Get to the pool.
func (p *bufPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<bufMinShift || c&(c-1) != 0 {
		return // not one of ours
	}
	k := bits.Len(uint(c)) - 1 - bufMinShift
	if k >= bufClasses {
		return
	}
	p.classes[k].Put(b)
}
