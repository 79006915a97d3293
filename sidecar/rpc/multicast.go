package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// maxMembers bounds the members whose answers one multicast call buffers.
const maxMembers = 64

// multiCall is the caller side of a multicast call: frames from many
// responders, each numbered on its own.
type multiCall struct {
	l      *Layer
	id     string
	target string
	inbox  *inbox
	abort  chan error
	dmu    sync.Mutex
	seqs   map[string]*seqCheck // guarded by dmu
}

func (c *multiCall) deliver(f *agpv1.RpcFrame) {
	c.dmu.Lock() // frames may be dispatched from several goroutines
	defer c.dmu.Unlock()
	s := f.GetSender()
	if s == "" {
		return
	}
	sc := c.seqs[s]
	if sc == nil {
		if len(c.seqs) >= maxMembers {
			c.l.m.dropped.WithLabelValues("too_many_members").Inc()
			return
		}
		sc = &seqCheck{}
		c.seqs[s] = sc
	}
	if !sc.ok(f.GetSeq()) {
		// This member's answer is incomplete: end it as lost.
		f = &agpv1.RpcFrame{Sender: s, Trailers: &agpv1.RpcTrailers{
			Code: int32(codes.Unavailable), Message: "a frame from this member was lost"}}
		sc.next = ^uint64(0) // ignore the rest
	}
	if !c.inbox.push(f) {
		select {
		case c.abort <- status.Errorf(codes.ResourceExhausted, "multicast call to %s: members sent beyond their flow-control windows", c.target):
		default:
		}
	}
}

// member is one responder of a multicast call, as the handler sees it.
type member struct {
	topic  string
	out    *frameSeq
	g      granter
	done   bool
	code   codes.Code
	msg    string
	heard  time.Time // last frame
	pinged time.Time // unanswered ping; zero = none
}

// multicast sends the call to up to fanout members (0 = all) of target and
// streams every answer back. The request is the client's messages up to its
// half-close, all in the open frame.
func (l *Layer) multicast(ctx context.Context, ss grpc.ServerStream, target, topic string, fanout uint32, md metadata.MD, open *agpv1.RpcOpen, up <-chan upEvent) error {
	var msgs [][]byte
	total := 0
	for done := false; !done; {
		select {
		case ev := <-up:
			switch {
			case ev.err == io.EOF:
				done = true
			case ev.err != nil:
				return ev.err
			default:
				total += len(ev.msg)
				if total > l.cfg.MaxMessageBytes {
					return status.Errorf(codes.ResourceExhausted, "multicast call to %s: the request messages total more than %d bytes (AGW_RPC_MAX_MESSAGE_BYTES)", target, l.cfg.MaxMessageBytes)
				}
				msgs = append(msgs, ev.msg)
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	open.Multicast = true
	c := &multiCall{
		l: l, id: l.newCallID(), target: target,
		inbox: newInbox(maxMembers * (2*l.cfg.Window + 16)),
		abort: make(chan error, 1),
		seqs:  make(map[string]*seqCheck),
	}
	if err := l.addOut(c.id, c); err != nil {
		return err
	}
	defer l.removeOut(c.id)
	f := &agpv1.RpcFrame{CallId: c.id, Seq: 1, Sender: l.name, Open: open, Messages: msgs, HalfClose: true}
	ack, err := l.publishRouted(ctx, topic, fanout, f, l.traceMD(ctx, md))
	if err != nil {
		return status.Errorf(codes.Unavailable, "multicast call to %s: the sidecar did not take it: %v", target, err)
	}
	expected := int(ack.GetLocalDeliveries() + ack.GetRemoteDeliveries())
	if expected == 0 {
		return status.Errorf(codes.Unavailable, "multicast call to %s: no member is reachable (nothing subscribes to its RPC topic %s)", target, topic)
	}
	if err := ss.SendHeader(metadata.Pairs(MDExpected, strconv.Itoa(expected))); err != nil {
		return err
	}

	members := map[string]*member{}
	var order []string
	finished, timedOut := 0, false
	complete := func() bool {
		return finished == len(members) && (finished >= expected || timedOut)
	}
	cancelAll := func(code codes.Code, reason string) {
		for _, m := range members {
			if !m.done && m.topic != "" {
				_ = m.out.send(l, m.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name,
					Cancel: &agpv1.RpcCancel{Code: int32(code), Reason: reason}})
			}
		}
	}
	acceptT := time.NewTimer(l.cfg.AcceptTimeout)
	defer acceptT.Stop()
	probeC, stopProbe := l.probeTicker()
	defer stopProbe()
	for !complete() || len(members) == 0 {
		select {
		case <-probeC:
			now := time.Now()
			for _, m := range members {
				switch {
				case m.done || m.topic == "":
				case !m.pinged.IsZero() && m.heard.Before(m.pinged):
					if now.Sub(m.pinged) >= l.cfg.ProbeInterval {
						m.done, m.code, m.msg = true, codes.Unavailable, "the member stopped answering"
						finished++
					}
				case now.Sub(m.heard) >= l.cfg.ProbeInterval:
					m.pinged = now
					_ = m.out.send(l, m.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name, Ping: true})
				default:
					m.pinged = time.Time{}
				}
			}
		case <-acceptT.C:
			timedOut = true
			if len(members) == 0 {
				return status.Errorf(codes.Unavailable, "multicast call to %s: no member took the call within %s", target, l.cfg.AcceptTimeout)
			}
		case err := <-c.abort:
			cancelAll(codes.Canceled, "caller's sidecar ended the call")
			return err
		case <-ctx.Done():
			code := codes.Canceled
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				code = codes.DeadlineExceeded
			}
			cancelAll(code, "caller: "+ctx.Err().Error())
			return status.FromContextError(ctx.Err()).Err()
		case <-c.inbox.ready:
		}
		for f := c.inbox.pop(); f != nil; f = c.inbox.pop() {
			s := f.GetSender()
			m := members[s]
			if m == nil {
				m = &member{out: &frameSeq{seq: 1}, g: granter{size: l.cfg.Window}}
				members[s] = m
			}
			if m.done {
				continue
			}
			m.heard = time.Now()
			if a := f.GetAccept(); a != nil {
				m.topic = a.GetTopic()
			}
			if f.GetPing() && m.topic != "" {
				_ = m.out.send(l, m.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name})
			}
			for _, b := range f.GetMessages() {
				if err := ss.SendMsg(&rawMsg{b: b}); err != nil {
					cancelAll(codes.Canceled, "caller went away")
					return err
				}
				order = append(order, s)
				if n := m.g.take(); n > 0 && m.topic != "" {
					_ = m.out.send(l, m.topic, &agpv1.RpcFrame{CallId: c.id, Sender: l.name, Window: uint32(n)})
				}
			}
			if t := f.GetTrailers(); t != nil {
				m.done, m.code, m.msg = true, codes.Code(t.GetCode()), t.GetMessage()
				finished++
			}
		}
	}
	tmd := metadata.MD{}
	for _, s := range order {
		tmd.Append(MDResponder, s)
	}
	for s, m := range members {
		tmd.Append(MDResponderStatus, fmt.Sprintf("%s %d %s", s, m.code, printable(m.msg)))
	}
	ss.SetTrailer(tmd)
	return nil
}

// printable keeps a status message sendable as a header value.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
