package rpc

import (
	"context"
	"sync"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/sidecar"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// agentLink is the layer's connection to its node's agent API: in memory
// for a node in this process (sidecar.LocalAgent), or a gRPC agent stream
// (client.Client) for a node in another process.
type agentLink interface {
	subscribe(ctx context.Context, topic string) error
	unsubscribe(ctx context.Context, topic string) error
	// publish sends an AGP message from the layer whose payload is f. With
	// wait it returns the sidecar's ack; without, it may return nil, nil.
	publish(ctx context.Context, h *msgHeader, f *agpv1.RpcFrame, wait bool) (*agpv1.Ack, error)
	// done is closed when the link ended by itself; err then says why.
	done() <-chan struct{}
	err() error
	close()
}

// msgHeader holds the header fields of the messages the layer publishes.
type msgHeader struct {
	source, destination string
	fanout              uint32
	metadata            map[string]string
}

// grpcLink is the agent API over a gRPC stream.
type grpcLink struct{ cl *client.Client }

func (g grpcLink) subscribe(ctx context.Context, t string) error   { return g.cl.Subscribe(ctx, t) }
func (g grpcLink) unsubscribe(ctx context.Context, t string) error { return g.cl.Unsubscribe(ctx, t) }
func (g grpcLink) done() <-chan struct{}                           { return g.cl.Done() }
func (g grpcLink) err() error                                      { return g.cl.Err() }
func (g grpcLink) close()                                          { _ = g.cl.Close() }

func (g grpcLink) publish(ctx context.Context, h *msgHeader, f *agpv1.RpcFrame, wait bool) (*agpv1.Ack, error) {
	b, err := EncodeFrame(f)
	if err != nil {
		return nil, err
	}
	msg := &agpv1.Message{
		Header: &agpv1.Header{
			Source: h.source, Destination: h.destination, Fanout: h.fanout,
			ContentType: ContentType, Metadata: h.metadata,
		},
		Payload: b,
	}
	if !wait {
		return nil, g.cl.PublishNoWait(msg)
	}
	return g.cl.Publish(ctx, msg)
}

// localLink is the agent API in memory: a sidecar.LocalAgent. Publishing
// is a function call that answers at once.
type localLink struct{ a *sidecar.LocalAgent }

func (k localLink) subscribe(_ context.Context, t string) error   { return k.a.Subscribe(t) }
func (k localLink) unsubscribe(_ context.Context, t string) error { return k.a.Unsubscribe(t) }
func (k localLink) done() <-chan struct{}                         { return k.a.Done() }
func (k localLink) err() error                                    { return sidecar.ErrLocalClosed }
func (k localLink) close()                                        { _ = k.a.Close() }

var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (k localLink) publish(_ context.Context, h *msgHeader, f *agpv1.RpcFrame, wait bool) (*agpv1.Ack, error) {
	bp := msgBufs.Get().(*[]byte)
	b, err := appendMessage((*bp)[:0], h, f)
	if err != nil {
		msgBufs.Put(bp)
		return nil, err
	}
	var ack *agpv1.Ack
	if wait {
		ack, err = k.a.Publish(b) // does not retain b
	} else {
		err = k.a.PublishNoAck(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		msgBufs.Put(bp)
	}
	return ack, err
}

// appendMessage appends the encoding of the agpv1.Message with header h,
// content type ContentType and frame f as its payload.
func appendMessage(b []byte, h *msgHeader, f *agpv1.RpcFrame) ([]byte, error) {
	hl := sizeString(1, h.source) + sizeString(2, h.destination) + sizeString(7, ContentType)
	if h.fanout != 0 {
		hl += 1 + protowire.SizeVarint(uint64(h.fanout))
	}
	for k, v := range h.metadata {
		e := sizeString(1, k) + sizeString(2, v)
		hl += 1 + protowire.SizeBytes(e)
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(hl))
	b = appendString(b, 1, h.source)
	b = appendString(b, 2, h.destination)
	if h.fanout != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(h.fanout))
	}
	for k, v := range h.metadata {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeString(1, k)+sizeString(2, v)))
		b = appendString(b, 1, k)
		b = appendString(b, 2, v)
	}
	b = appendString(b, 7, ContentType)
	n := proto.Size(f)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, f)
}

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// rawDelivery is a delivered message, read without decoding its header as
// a whole: the fields the dispatcher needs, aliasing the encoding.
type rawDelivery struct {
	hdr         []byte // the header's encoding (last occurrence)
	dest, ctype []byte
	source      []byte
	payload     []byte
}

// parseDelivery reads an encoded agpv1.Message. Repeated fields follow
// protobuf's rule (the last occurrence wins; header occurrences merge, so
// a field read from a later one overrides).
func parseDelivery(b []byte) (rawDelivery, bool) {
	var d rawDelivery
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return d, false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return d, false
		}
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			v, _ := protowire.ConsumeBytes(b)
			if num == 2 {
				d.payload = v
			} else if !d.parseHeader(v) {
				return d, false
			}
		}
		b = b[m:]
	}
	return d, true
}

func (d *rawDelivery) parseHeader(b []byte) bool {
	d.hdr = b
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch num {
			case 1:
				d.source = v
			case 2:
				d.dest = v
			case 7:
				d.ctype = v
			}
		}
		b = b[m:]
	}
	return true
}
