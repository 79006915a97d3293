package rpc

import (
	"sync"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
)

// inbox is a call's queue of frames from the dispatcher to the call's
// goroutine. It is bounded (by the flow-control window: a sender that
// overflows it broke the protocol) but grows only as needed, so a unary
// call allocates room for one frame, not for a full window.
type inbox struct {
	mu    sync.Mutex
	q     []*agpv1.RpcFrame
	head  int
	max   int
	ready chan struct{} // a token when frames were pushed since the last wait
	first [2]*agpv1.RpcFrame
}

func newInbox(max int) *inbox { return &inbox{max: max, ready: make(chan struct{}, 1)} }

// push queues f without waiting; false if the inbox is full.
func (b *inbox) push(f *agpv1.RpcFrame) bool {
	b.mu.Lock()
	if len(b.q)-b.head >= b.max {
		b.mu.Unlock()
		return false
	}
	if b.q == nil {
		b.q = b.first[:0]
	}
	b.q = append(b.q, f)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest frame, or returns nil if there is none. Wait on
// ready when it returns nil.
func (b *inbox) pop() *agpv1.RpcFrame {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head == len(b.q) {
		return nil
	}
	f := b.q[b.head]
	b.q[b.head] = nil
	b.head++
	if b.head == len(b.q) {
		b.q, b.head = b.q[:0], 0
	}
	return f
}
