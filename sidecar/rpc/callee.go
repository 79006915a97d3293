package rpc

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// inCall is a call replayed to this agent's app.
type inCall struct {
	l       *Layer
	id      string
	caller  string
	replyTo string
	method  string

	ctx    context.Context
	cancel context.CancelCauseFunc

	inbox   *inbox     // messages, half-close; bounded
	dmu     sync.Mutex // serializes deliver
	seq     seqCheck   // guarded by dmu
	downWin *window
	out     frameSeq

	accept     *agpv1.RpcAccept
	acceptSent bool // guarded by out.mu
	probe      prober

	start      int64       // unix nanos
	halfClosed bool        // the open held the whole request
	requestLen int         // messages in the open
	accepted   atomic.Bool // the accept went (acceptSent, for the sweeper)
	kicked     bool        // the sweeper sent the accept alone (sweeper only)
}

// acceptDelay is how long a target that got the whole request waits for
// the app's first answer to carry the accept before sending it alone.
const acceptDelay = 20 * time.Millisecond

var streamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// oneRequestDesc replays a call whose whole request is one message: gRPC
// sends it with the end of the stream, one HTTP/2 frame fewer than a
// message and a half-close. The answer may still be a stream.
var oneRequestDesc = &grpc.StreamDesc{ServerStreams: true}

func (c *inCall) deliver(f *agpv1.RpcFrame) {
	c.dmu.Lock() // frames may be dispatched from several goroutines
	defer c.dmu.Unlock()
	if f.GetSender() != c.caller {
		c.l.m.dropped.WithLabelValues("wrong_sender").Inc()
		return
	}
	c.probe.heard()
	if !c.seq.ok(f.GetSeq()) {
		if x := f.GetCancel(); x != nil {
			c.cancel(status.Errorf(codes.Code(x.GetCode()), "%s", x.GetReason()))
			return
		}
		c.cancel(status.Errorf(codes.Unavailable, "a frame from the caller %s was lost", c.caller))
		return
	}
	if f.GetPing() {
		go func() { _ = c.send(&agpv1.RpcFrame{}) }()
	}
	c.downWin.add(int(f.GetWindow()))
	if len(f.GetMessages()) > 0 || f.GetHalfClose() {
		if !c.inbox.push(f) {
			c.cancel(status.Error(codes.ResourceExhausted, "the caller sent beyond its flow-control window"))
		}
	}
	if x := f.GetCancel(); x != nil {
		c.cancel(status.Errorf(codes.Code(x.GetCode()), "cancelled by the caller: %s", x.GetReason()))
	}
}

// open starts replaying a call that arrived for this agent.
func (l *Layer) open(hmd map[string]string, f *agpv1.RpcFrame) {
	o := f.GetOpen()
	caller := f.GetSender()
	if caller == "" || caller != o.GetCaller() {
		l.m.dropped.WithLabelValues("malformed").Inc()
		return
	}
	reply := func(fr *agpv1.RpcFrame) {
		fr.CallId, fr.Reply, fr.Sender, fr.Seq = f.GetCallId(), true, l.name, 1
		_, _ = l.publish(context.Background(), o.GetReplyTo(), 1, fr, nil, false)
	}
	refuse := func(code codes.Code, format string, a ...any) {
		reply(&agpv1.RpcFrame{Trailers: statusTrailers(status.Errorf(code, format, a...), nil)})
		l.m.call("callee", code)
	}
	if l.app == nil {
		refuse(codes.Unimplemented, "agent %s serves no gRPC calls (its sidecar has no AGW_APP_ADDR)", l.name)
		return
	}
	l.mu.Lock()
	if _, dup := l.in[f.GetCallId()]; dup {
		l.mu.Unlock()
		return
	}
	if l.draining {
		l.mu.Unlock()
		refuse(codes.Unavailable, "agent %s's sidecar is shutting down; retry", l.name)
		return
	}
	if len(l.in) >= l.cfg.MaxConcurrentCalls {
		l.mu.Unlock()
		refuse(codes.ResourceExhausted, "agent %s already serves %d calls (AGW_RPC_MAX_CONCURRENT_CALLS)", l.name, len(l.in))
		return
	}
	parent := l.o.prop.Extract(l.ctx, propagation.MapCarrier(hmd))
	ctx, cancel := context.WithCancelCause(parent)
	c := &inCall{
		l: l, id: f.GetCallId(), caller: caller, replyTo: o.GetReplyTo(), method: o.GetMethod(),
		start: time.Now().UnixNano(), halfClosed: f.GetHalfClose(), requestLen: len(f.GetMessages()),
		accept: &agpv1.RpcAccept{Responder: l.name, Topic: l.topic, InitialWindow: uint32(l.cfg.Window)},
		ctx:    ctx, cancel: cancel,
		inbox:   newInbox(2*l.cfg.Window + 16),
		downWin: newWindow(int(o.GetInitialWindow())),
	}
	c.seq.ok(f.GetSeq())
	c.probe.heard()
	l.in[c.id] = c
	l.calls.Add(1)
	l.mu.Unlock()
	if len(f.GetMessages()) > 0 || f.GetHalfClose() {
		c.inbox.push(&agpv1.RpcFrame{Messages: f.GetMessages(), HalfClose: f.GetHalfClose()})
	}
	if f.GetWindow() > 0 {
		c.downWin.add(int(f.GetWindow()))
	}
	timeout, wmd, halfClosed := time.Duration(o.GetTimeoutNanos()), o.GetMetadata(), f.GetHalfClose()
	l.w.Go(func() { c.serve(timeout, wmd, halfClosed) })
}

func (c *inCall) finish(err error) {
	l := c.l
	l.m.call("callee", status.Code(err))
	c.cancel(context.Canceled)
	l.mu.Lock()
	delete(l.in, c.id)
	l.mu.Unlock()
	l.calls.Done()
}

// serve replays the call to the app and carries its answers back.
func (c *inCall) serve(timeout time.Duration, wmd *agpv1.RpcMetadata, halfClosed bool) {
	l := c.l
	l.m.inflightCallee.Inc()
	defer l.m.inflightCallee.Dec()
	var endErr error
	defer func() { c.finish(endErr) }()

	ctx := c.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	md := fromWire(wmd)
	md.Set(MDCaller, c.caller)
	if !l.o.tracing {
		// No client stats handler injects it: carry the caller's trace
		// context on.
		l.o.prop.Inject(ctx, mdCarrier(md))
	}
	ctx = metadata.NewOutgoingContext(ctx, md)
	if !halfClosed {
		// The caller waits for the accept before it sends more; the app
		// already works on the call meanwhile.
		go func() { _ = c.sendFirst(nil) }()
	}
	desc := streamDesc
	if halfClosed && c.requestLen == 1 {
		desc = oneRequestDesc
	}
	cs, err := l.app.NewStream(ctx, desc, c.method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		endErr = c.end(ctx, err, nil)
		return
	}
	if halfClosed {
		// The open held the whole request: write it here, no goroutine.
		c.sendAll(cs)
		endErr = c.relayFromApp(ctx, cs, true)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.sendToApp(ctx, cs) })
	defer wg.Wait()
	endErr = c.relayFromApp(ctx, cs, false)
}

// sendAll writes the request that arrived whole in the open frame.
func (c *inCall) sendAll(cs grpc.ClientStream) {
	f := c.inbox.pop() // queued by open
	for _, m := range f.GetMessages() {
		if err := cs.SendMsg(&rawMsg{b: m}); err != nil {
			return // the stream ended; RecvMsg reports why
		}
	}
	_ = cs.CloseSend()
}

// sweep is the sweeper's check of the call (see Layer.sweep). When the
// open held the whole request, the accept rides on the app's first answer,
// or goes alone once the app took acceptAfter (so that the caller knows
// the call was taken within its AGW_RPC_ACCEPT_TIMEOUT). A silent caller
// is pinged, and the call ends when it does not answer (its sidecar is
// gone, or the call ended there unheard).
func (c *inCall) sweep(now int64) {
	l := c.l
	if c.halfClosed && !c.kicked && !c.accepted.Load() && now-c.start >= int64(l.acceptAfter()) {
		c.kicked = true
		go func() { _ = c.sendFirst(nil) }()
	}
	if l.cfg.ProbeInterval <= 0 || c.ctx.Err() != nil {
		return
	}
	ping, gone := c.probe.tick(l.cfg.ProbeInterval)
	if gone {
		c.cancel(status.Errorf(codes.Unavailable, "the caller %s stopped answering", c.caller))
		return
	}
	if ping {
		go func() { _ = c.send(&agpv1.RpcFrame{Ping: true}) }()
	}
}

// acceptAfter is how long a replayed call whose request came whole waits
// for the app's first answer to carry the accept.
func (l *Layer) acceptAfter() time.Duration { return min(l.cfg.AcceptTimeout/4, acceptDelay) }

// send numbers and publishes a reply frame. The call's first reply frame
// carries the accept and waits until the sidecar routed it.
func (c *inCall) send(f *agpv1.RpcFrame) error { return c.sendFirst(f) }

// sendFirst sends f (nil: the accept alone, unless it was sent already).
func (c *inCall) sendFirst(f *agpv1.RpcFrame) error {
	l := c.l
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if f == nil {
		if c.acceptSent {
			return nil
		}
		f = &agpv1.RpcFrame{}
	}
	f.CallId, f.Reply, f.Sender = c.id, true, l.name
	c.out.seq++
	f.Seq = c.out.seq
	if c.acceptSent {
		_, err := l.publish(context.Background(), c.replyTo, 1, f, nil, false)
		return err
	}
	c.acceptSent = true
	c.accepted.Store(true)
	f.Accept = c.accept
	ack, err := l.publishRouted(c.ctx, c.replyTo, 1, f, nil)
	if err == nil && ack.GetLocalDeliveries()+ack.GetRemoteDeliveries() == 0 {
		err = status.Errorf(codes.Unavailable, "no route back to the caller's %s within %s (AGW_RPC_ROUTE_WAIT)", c.replyTo, l.cfg.RouteWait)
	}
	if err != nil {
		l.log.Debug("cannot answer a call", "caller", c.caller, "err", err)
		c.cancel(status.Convert(err).Err())
	}
	return err
}

// end sends the trailers of err (nil = OK) and returns the status.
func (c *inCall) end(ctx context.Context, err error, tmd metadata.MD) error {
	if err != nil {
		if cause := context.Cause(c.ctx); cause != nil && c.ctx.Err() != nil {
			if _, ok := status.FromError(cause); ok {
				err = cause
			}
		} else if ctx.Err() != nil && status.Code(err) == codes.Unknown {
			err = status.FromContextError(ctx.Err()).Err()
		}
	}
	_ = c.send(&agpv1.RpcFrame{Trailers: statusTrailers(err, tmd)})
	return err
}

// sendToApp writes the caller's messages to the app and grants credits.
func (c *inCall) sendToApp(ctx context.Context, cs grpc.ClientStream) {
	g := granter{size: c.l.cfg.Window}
	for {
		f := c.inbox.pop()
		if f == nil {
			select {
			case <-c.inbox.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		for _, m := range f.GetMessages() {
			if err := cs.SendMsg(&rawMsg{b: m}); err != nil {
				return // io.EOF: the stream ended; RecvMsg reports why
			}
			if n := g.take(); n > 0 {
				_ = c.send(&agpv1.RpcFrame{Window: uint32(n)})
			}
		}
		if f.GetHalfClose() {
			_ = cs.CloseSend()
			return
		}
	}
}

// Batching of small response messages into one frame.
const (
	batchBytes    = 64 << 10
	batchMessages = 64
)

// downEvent is one read from the app's response stream.
type downEvent struct {
	msg []byte
	err error
}

// relayFromApp carries the app's headers, messages and trailers to the
// caller, within the caller's window, coalescing what is ready at once.
// When the caller has sent its whole request (halfClosed), the app's stream
// is read here, and what was read goes when the next read takes longer
// than flushDelay: a unary answer is one frame, without a goroutine.
// Otherwise (the caller still talks, and may wait for each answer) a
// reader runs ahead and what is ready goes at once.
func (c *inCall) relayFromApp(ctx context.Context, cs grpc.ClientStream, halfClosed bool) error {
	hdr, herr := cs.Header()
	if herr != nil {
		// The stream failed before headers: a trailers-only answer.
		return c.end(ctx, herr, cs.Trailer())
	}
	h := toWire(hdr)
	if h == nil {
		h = &agpv1.RpcMetadata{}
	}
	r := &relay{c: c, f: &agpv1.RpcFrame{Headers: h}}
	if halfClosed {
		return r.runSync(ctx, cs)
	}
	return r.runAhead(ctx, cs)
}

// flushDelay is how long a relay that reads in line waits for the app's
// next message before it sends what it has.
const flushDelay = 100 * time.Microsecond

// relay is the frame being filled with the app's answers.
type relay struct {
	c    *inCall
	mu   sync.Mutex // guards f, size, err (the flush timer runs apart)
	f    *agpv1.RpcFrame
	size int
	err  error // the first failed send
}

// flushLocked sends the frame if it holds anything.
func (r *relay) flushLocked() error {
	if r.err != nil {
		return r.err
	}
	f := r.f
	if f.Headers == nil && len(f.Messages) == 0 && f.Trailers == nil {
		return nil
	}
	r.f, r.size = &agpv1.RpcFrame{}, 0
	r.err = r.c.send(f)
	return r.err
}

func (r *relay) flushTimer() {
	r.mu.Lock()
	_ = r.flushLocked()
	r.mu.Unlock()
}

// endErr is the status of a stream that ended with err (io.EOF: OK).
func (r *relay) endErr(err error) error {
	if err == io.EOF {
		return nil
	}
	c := r.c
	if cause := context.Cause(c.ctx); c.ctx.Err() != nil {
		if _, ok := status.FromError(cause); ok {
			return cause
		}
	}
	return err
}

// addLocked adds one message, within the caller's window; it may flush,
// and wait (unlocked) for credits.
func (r *relay) addLocked(ctx context.Context, msg []byte) error {
	if len(r.f.Messages) > 0 || r.f.Headers != nil {
		if r.size+len(msg) > batchBytes || len(r.f.Messages) >= batchMessages {
			if err := r.flushLocked(); err != nil {
				return err
			}
		}
	}
	if !r.c.downWin.tryAcquire() {
		// Out of credits: send what is ready, then wait for a grant.
		if err := r.flushLocked(); err != nil {
			return err
		}
		r.mu.Unlock()
		err := r.c.downWin.acquire(ctx)
		r.mu.Lock()
		if err != nil {
			return errNoCredit
		}
	}
	r.f.Messages = append(r.f.Messages, msg)
	r.size += len(msg)
	return nil
}

// errNoCredit: the call ended while waiting for credits.
var errNoCredit = errors.New("call ended while waiting for flow-control credits")

// finish sends the trailers of the stream's end (err: from RecvMsg) or of
// a failed wait for credits.
func (r *relay) finish(ctx context.Context, cs grpc.ClientStream, err error) error {
	if errors.Is(err, errNoCredit) {
		r.mu.Unlock()
		return r.c.end(ctx, status.FromContextError(ctx.Err()).Err(), nil)
	}
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return err
	}
	end := r.endErr(err)
	r.f.Trailers = statusTrailers(end, cs.Trailer())
	_ = r.flushLocked()
	r.mu.Unlock()
	return end
}

// runSync reads the app's stream in line (see relayFromApp).
func (r *relay) runSync(ctx context.Context, cs grpc.ClientStream) error {
	t := time.AfterFunc(flushDelay, r.flushTimer)
	defer t.Stop()
	for {
		var m rawMsg
		err := cs.RecvMsg(&m)
		t.Stop()
		r.mu.Lock()
		if err == nil && r.err == nil {
			err = r.addLocked(ctx, m.b)
		}
		if err != nil || r.err != nil {
			return r.finish(ctx, cs, err)
		}
		r.mu.Unlock()
		t.Reset(flushDelay)
	}
}

// runAhead reads the app's stream on a worker, which runs ahead (bounded,
// so that a slow caller holds the app back), and sends what is ready.
func (r *relay) runAhead(ctx context.Context, cs grpc.ClientStream) error {
	evs := make(chan downEvent, batchMessages)
	done := make(chan struct{})
	defer close(done)
	r.c.l.w.Go(func() {
		for {
			var m rawMsg
			err := cs.RecvMsg(&m)
			select {
			case evs <- downEvent{msg: m.b, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	})
	r.mu.Lock()
	for {
		var ev downEvent
		select {
		case ev = <-evs:
		default:
			runtime.Gosched()
			select {
			case ev = <-evs:
			default:
				if err := r.flushLocked(); err != nil {
					return r.finish(ctx, cs, err)
				}
				r.mu.Unlock()
				ev = <-evs
				r.mu.Lock()
			}
		}
		err := ev.err
		if err == nil {
			err = r.addLocked(ctx, ev.msg)
		}
		if err != nil {
			return r.finish(ctx, cs, err)
		}
	}
}
