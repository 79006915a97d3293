package rpc

import (
	"context"
	"sync"
)

// window counts the messages one side may still send in a call: the
// receiver grants credits as its consumer takes messages.
type window struct {
	mu   sync.Mutex
	n    int
	wake chan struct{} // made by a waiter, closed by the next grant
}

func newWindow(n int) *window { return &window{n: n} }

// add grants n credits.
func (w *window) add(n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	w.n += n
	if w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
	w.mu.Unlock()
}

// tryAcquire takes one credit if there is one.
func (w *window) tryAcquire() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 {
		w.n--
		return true
	}
	return false
}

// acquire takes one credit, waiting for a grant until ctx ends.
func (w *window) acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.n > 0 {
			w.n--
			w.mu.Unlock()
			return nil
		}
		if w.wake == nil {
			w.wake = make(chan struct{})
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// granter returns credits to the sender in batches of half a window.
type granter struct {
	size, consumed int
}

// take records one consumed message and returns how many credits to grant
// now (0 = not yet).
func (g *granter) take() int {
	g.consumed++
	if g.consumed*2 >= g.size {
		n := g.consumed
		g.consumed = 0
		return n
	}
	return 0
}
