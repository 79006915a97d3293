package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	spb "google.golang.org/genproto/googleapis/rpc/status"
)

// coalesceWait is how long the caller waits for the first request message
// (and the half-close after it) to send them in the open frame: a unary
// call then costs one frame each way.
const coalesceWait = 3 * time.Millisecond

// upEvent is one read from the agent's client stream.
type upEvent struct {
	msg []byte
	err error // io.EOF: half-close
}

// readUp reads the client stream into a channel until it ends or done. It
// reads at most two events ahead: a unary request and its half-close.
func (l *Layer) readUp(ss grpc.ServerStream, done <-chan struct{}) <-chan upEvent {
	ch := make(chan upEvent, 2)
	l.w.Go(func() {
		for {
			var m rawMsg
			err := ss.RecvMsg(&m)
			select {
			case ch <- upEvent{msg: m.b, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return ch
}

// peek waits up to d for an event.
func peek(ch <-chan upEvent, d time.Duration) (upEvent, bool) {
	select {
	case ev := <-ch:
		return ev, true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-ch:
		return ev, true
	case <-t.C:
		return upEvent{}, false
	}
}

// outCall is the caller side of a unicast call.
type outCall struct {
	l      *Layer
	id     string
	target string
	md     metadata.MD // the call's incoming metadata

	inbox *inbox     // headers, messages, trailers; bounded
	abort chan error // first fatal error, buffered 1

	dmu       sync.Mutex // serializes deliver; guards seq and responder
	seq       seqCheck
	responder string

	start      int64 // unix nanos
	acceptOnce sync.Once
	accepted   chan struct{}
	topic      string // the responder's topic, set before accepted closes
	upWin      *window
	out        frameSeq
	probe      prober
}

func (c *outCall) fail(err error) {
	select {
	case c.abort <- err:
	default:
	}
}

func (c *outCall) deliver(f *agpv1.RpcFrame) {
	c.dmu.Lock() // frames may be dispatched from several goroutines
	defer c.dmu.Unlock()
	if c.responder != "" && f.GetSender() != c.responder {
		c.l.m.dropped.WithLabelValues("wrong_sender").Inc()
		return
	}
	c.probe.heard()
	if !c.seq.ok(f.GetSeq()) {
		if x := f.GetCancel(); x != nil {
			c.fail(status.Errorf(codes.Code(x.GetCode()), "call to %s: %s", c.target, x.GetReason()))
			return
		}
		c.fail(status.Errorf(codes.Unavailable, "call to %s: a frame from the target was lost (got %d, want %d); retry", c.target, f.GetSeq(), c.seq.next))
		return
	}
	if f.GetPing() && isClosed(c.accepted) {
		go func() { _ = c.out.send(c.l, c.topic, &agpv1.RpcFrame{CallId: c.id, Sender: c.l.name}) }()
	}
	if a := f.GetAccept(); a != nil {
		c.acceptOnce.Do(func() {
			c.responder = f.GetSender()
			c.topic = a.GetTopic()
			c.upWin.add(int(a.GetInitialWindow()))
			close(c.accepted)
		})
	}
	c.upWin.add(int(f.GetWindow()))
	if f.GetHeaders() != nil || len(f.GetMessages()) > 0 || f.GetTrailers() != nil {
		if !c.inbox.push(f) {
			c.fail(status.Errorf(codes.ResourceExhausted, "call to %s: the target sent beyond its flow-control window", c.target))
			return
		}
	}
	if x := f.GetCancel(); x != nil {
		c.fail(status.Errorf(codes.Code(x.GetCode()), "call cancelled by the target's sidecar: %s", x.GetReason()))
	}
}

// handle is the interception listener's handler for every method.
func (l *Layer) handle(_ any, ss grpc.ServerStream) (err error) {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method in the call")
	}
	ctx := ss.Context()
	defer func() { l.m.call("caller", status.Code(err)) }()
	l.m.inflightCaller.Inc()
	defer l.m.inflightCaller.Dec()

	md, _ := metadata.FromIncomingContext(ctx)
	target := first(md, MDTarget)
	if target == "" {
		target = first(md, ":authority")
	}
	name, rerr := l.res.Resolve(target)
	if rerr != nil {
		return status.Errorf(codes.NotFound, "%v", rerr)
	}
	topic, terr := Topic(name)
	if terr != nil {
		return status.Errorf(codes.InvalidArgument, "target %s: %v", name, terr)
	}
	open := &agpv1.RpcOpen{
		Method:        method,
		Metadata:      toWire(md),
		ReplyTo:       l.topic,
		Caller:        l.name,
		InitialWindow: uint32(l.cfg.Window),
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return status.Error(codes.DeadlineExceeded, "deadline exceeded before the call left the sidecar")
		}
		open.TimeoutNanos = int64(left)
	}
	done := make(chan struct{})
	defer close(done)
	up := l.readUp(ss, done)
	if fo := first(md, MDFanout); fo != "" && fo != "1" {
		n, ferr := parseFanout(fo)
		if ferr != nil {
			return status.Errorf(codes.InvalidArgument, "%v", ferr)
		}
		return l.multicast(ctx, ss, name, topic, n, md, open, up)
	}
	return l.unicast(ctx, ss, name, topic, md, open, up)
}

func parseFanout(s string) (uint32, error) {
	if s == "all" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("metadata %s %q: want 1 (anycast, the default), 0 or all (every member), or N (at most N members)", MDFanout, s)
	}
	return uint32(n), nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// traceMD returns the trace context of the call in ctx (whose incoming
// metadata is md) for the AGP message metadata. With tracing on, it is the
// interception listener's server span; with it off, the agent's own trace
// context from md.
func (l *Layer) traceMD(ctx context.Context, md metadata.MD) map[string]string {
	if !l.o.tracing {
		ctx = l.o.prop.Extract(ctx, mdCarrier(md))
	}
	var mc lazyCarrier
	l.o.prop.Inject(ctx, &mc)
	return mc.m
}

// lazyCarrier is a propagation.TextMapCarrier that allocates its map only
// when something is set.
type lazyCarrier struct{ m map[string]string }

func (c *lazyCarrier) Get(k string) string { return c.m[k] }

func (c *lazyCarrier) Set(k, v string) {
	if c.m == nil {
		c.m = make(map[string]string, 2)
	}
	c.m[k] = v
}

func (c *lazyCarrier) Keys() []string {
	out := make([]string, 0, len(c.m))
	for k := range c.m {
		out = append(out, k)
	}
	return out
}

func (l *Layer) unicast(ctx context.Context, ss grpc.ServerStream, target, topic string, md metadata.MD, open *agpv1.RpcOpen, up <-chan upEvent) error {
	c := &outCall{
		l: l, id: l.newCallID(), target: target, md: md, start: time.Now().UnixNano(),
		inbox:    newInbox(2*l.cfg.Window + 16),
		abort:    make(chan error, 1),
		accepted: make(chan struct{}),
		upWin:    newWindow(0),
	}
	if err := l.addOut(c.id, c); err != nil {
		return err
	}
	defer l.removeOut(c.id)

	f := &agpv1.RpcFrame{CallId: c.id, Sender: l.name, Open: open}
	upDone := false
	var pending []upEvent
	if ev, ok := peek(up, coalesceWait); ok {
		switch {
		case ev.err == nil:
			f.Messages = append(f.Messages, ev.msg)
			if ev2, ok := peek(up, coalesceWait); ok {
				if ev2.err == io.EOF {
					f.HalfClose, upDone = true, true
				} else if ev2.err != nil {
					return ev2.err
				} else {
					pending = append(pending, ev2) // sent after the accept
				}
			}
		case ev.err == io.EOF:
			f.HalfClose, upDone = true, true
		default:
			return ev.err
		}
	}
	c.out.mu.Lock()
	c.out.seq++
	f.Seq = c.out.seq
	ack, err := l.publishRouted(ctx, topic, 1, f, l.traceMD(ctx, c.md))
	c.out.mu.Unlock()
	if err != nil {
		if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
			return status.Errorf(s.Code(), "call to %s: %s", target, s.Message())
		}
		return status.Errorf(codes.Unavailable, "call to %s: the sidecar did not take it: %v", target, err)
	}
	if ack.GetLocalDeliveries()+ack.GetRemoteDeliveries() == 0 {
		return status.Errorf(codes.Unavailable, "call to %s: no instance is reachable (nothing subscribes to its RPC topic %s)", target, topic)
	}

	if !upDone {
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			if err := c.sendUp(cctx, pending, up); err != nil && cctx.Err() == nil {
				c.fail(err)
			}
		})
	}

	// The accept timeout and the probes run on the layer's sweeper
	// (outCall.sweep), which fails the call through abort.
	c.probe.heard()
	var g granter
	g.size = l.cfg.Window
	for {
		select {
		case err := <-c.abort:
			c.cancelTarget(codes.Canceled, "caller's sidecar ended the call")
			return err
		case <-ctx.Done():
			code := codes.Canceled
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				code = codes.DeadlineExceeded
			}
			c.cancelTarget(code, "caller: "+ctx.Err().Error())
			return status.FromContextError(ctx.Err()).Err()
		case <-c.inbox.ready:
		}
		for f := c.inbox.pop(); f != nil; f = c.inbox.pop() {
			if h := f.GetHeaders(); h != nil {
				hmd := fromWire(h)
				hmd.Set(MDResponder, c.responder)
				var err error
				if len(f.GetMessages()) > 0 || f.GetTrailers() != nil {
					err = ss.SetHeader(hmd) // they go with what follows
				} else {
					err = ss.SendHeader(hmd)
				}
				if err != nil {
					c.cancelTarget(codes.Canceled, "caller went away")
					return err
				}
			}
			for _, m := range f.GetMessages() {
				if err := ss.SendMsg(&rawMsg{b: m}); err != nil {
					c.cancelTarget(codes.Canceled, "caller went away")
					return err
				}
				if n := g.take(); n > 0 && c.topic != "" {
					_ = c.out.send(l, c.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name, Window: uint32(n)})
				}
			}
			if t := f.GetTrailers(); t != nil {
				tmd := fromWire(t.GetMetadata())
				if len(tmd) > 0 {
					ss.SetTrailer(tmd)
				}
				return trailerStatus(t)
			}
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sendUp carries the client's further messages and half-close to the
// responder once it accepted, within the window it grants.
func (c *outCall) sendUp(ctx context.Context, pending []upEvent, up <-chan upEvent) error {
	select {
	case <-c.accepted:
	case <-ctx.Done():
		return nil
	}
	for {
		var ev upEvent
		if len(pending) > 0 {
			ev, pending = pending[0], pending[1:]
		} else {
			select {
			case ev = <-up:
			case <-ctx.Done():
				return nil
			}
		}
		f := &agpv1.RpcFrame{CallId: c.id, Sender: c.l.name}
		switch {
		case ev.err == io.EOF:
			f.HalfClose = true
		case ev.err != nil:
			return nil // the call is ending; the handler reports why
		default:
			if err := c.upWin.acquire(ctx); err != nil {
				return nil
			}
			f.Messages = [][]byte{ev.msg}
		}
		if err := c.out.send(c.l, c.topic, f); err != nil {
			return status.Errorf(codes.Unavailable, "call to %s: sending to the sidecar: %v", c.target, err)
		}
		if f.HalfClose {
			return nil
		}
		runtime.Gosched()
	}
}

// sweep is the sweeper's check of the call (see Layer.sweep): the accept
// timeout, then probes of a silent target.
func (c *outCall) sweep(now int64) {
	l := c.l
	if !isClosed(c.accepted) {
		if now-c.start >= int64(l.cfg.AcceptTimeout) {
			c.fail(status.Errorf(codes.Unavailable, "call to %s: no instance took the call within %s", c.target, l.cfg.AcceptTimeout))
		}
		return
	}
	if l.cfg.ProbeInterval <= 0 {
		return
	}
	ping, gone := c.probe.tick(l.cfg.ProbeInterval)
	if gone {
		c.fail(status.Errorf(codes.Unavailable, "call to %s: the target's sidecar stopped answering (no frame for %s, ping unanswered)", c.target, l.cfg.ProbeInterval))
		return
	}
	if ping {
		go func() { _ = c.out.send(l, c.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name, Ping: true}) }()
	}
}

// cancelTarget tells the responder (or, before the accept, nobody) that the
// call is over.
func (c *outCall) cancelTarget(code codes.Code, reason string) {
	if !isClosed(c.accepted) {
		return
	}
	_ = c.out.send(c.l, c.topic, &agpv1.RpcFrame{CallId: c.id, Sender: c.l.name,
		Cancel: &agpv1.RpcCancel{Code: int32(code), Reason: reason}})
}

// trailerStatus turns frame trailers into the call's status error.
func trailerStatus(t *agpv1.RpcTrailers) error {
	code := codes.Code(t.GetCode())
	if code == codes.OK {
		return nil
	}
	if code > codes.Unauthenticated {
		code = codes.Unknown
	}
	p := &spb.Status{Code: int32(code), Message: t.GetMessage()}
	for _, d := range t.GetDetails() {
		a := &anypb.Any{}
		if err := unmarshalAny(d, a); err == nil {
			p.Details = append(p.Details, a)
		}
	}
	return status.ErrorProto(p)
}

// statusTrailers turns a call's end into frame trailers.
func statusTrailers(err error, md metadata.MD) *agpv1.RpcTrailers {
	t := &agpv1.RpcTrailers{Metadata: toWire(md)}
	if err == nil {
		return t
	}
	s := status.Convert(err)
	t.Code, t.Message = int32(s.Code()), s.Message()
	for _, d := range s.Proto().GetDetails() {
		if b, err := marshalAny(d); err == nil {
			t.Details = append(t.Details, b)
		}
	}
	if strings.TrimSpace(t.Message) == "" && s.Code() != codes.OK {
		t.Message = s.Code().String()
	}
	return t
}
