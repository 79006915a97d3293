package rpc

import "time"

// workers runs the layer's per-call functions (the replay of a call, the
// readers of its streams) on reused goroutines: a fresh goroutine per call
// grows its stack on every call, a reused one has grown it already. A
// function that finds no idle worker gets a new one; a worker idle for
// idle, or when stop closes, exits.
type workers struct {
	ch   chan func()
	stop <-chan struct{}
	idle time.Duration
}

func newWorkers(stop <-chan struct{}, idle time.Duration) *workers {
	return &workers{ch: make(chan func()), stop: stop, idle: idle}
}

// Go runs f on an idle worker, or on a new one.
func (w *workers) Go(f func()) {
	select {
	case w.ch <- f:
	default:
		go w.run(f)
	}
}

func (w *workers) run(f func()) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		f()
		f = nil
		select {
		case f = <-w.ch:
			continue
		default:
		}
		if t == nil {
			t = time.NewTimer(w.idle)
		} else {
			t.Reset(w.idle)
		}
		select {
		case f = <-w.ch:
		case <-t.C:
			return
		case <-w.stop:
			return
		}
	}
}
