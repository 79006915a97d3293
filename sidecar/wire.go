package sidecar

import (
	"errors"
	"fmt"
	"sync/atomic"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The data plane forwards messages in wire form: a message is parsed once on
// arrival (its header only; the payload is never decoded) and encoded once,
// and that one encoding is sent to every target, prefixed by the few bytes
// that wrap it in an AgentResponse.Delivery or a PeerFrame. Wire form is
// the standard protobuf encoding, so agents and peers see ordinary messages.

// wmsg is a message in wire form, read-only once built.
//
// A large body lives in a buffer from gRPC's buffer pool and is reference
// counted: the builder holds one reference, every queued send one more, and
// each send's reference passes to the mem.Buffer the codec hands to gRPC,
// which releases it once the bytes are written. The last release returns
// the buffer to the pool. A reference that is never released (a send that
// fails early, a queue dropped at close) only means the garbage collector
// frees the buffer instead; nothing reads a body after its last release.
type wmsg struct {
	dest   string // header.destination, for routing (empty on the peer path)
	fanout uint32
	body   []byte // encoding of the agpv1.Message
	bufp   *[]byte
	refs   atomic.Int32
	dpre   [2 + 2*binary10]byte
	dn     uint8
	ppre   [1 + binary10]byte
	pn     uint8
}

var bodyPool mem.BufferPool = new(bufPool)

// ref takes a reference for a queued send.
func (w *wmsg) ref() {
	if w.bufp != nil {
		w.refs.Add(1)
	}
}

// unref releases a reference.
func (w *wmsg) unref() {
	if w.bufp != nil && w.refs.Add(-1) == 0 {
		bodyPool.Put(w.bufp)
	}
}

// Get and Put make w the mem.BufferPool of the buffers the codec wraps
// around its body: gRPC's final Free calls Put, which releases one
// reference.
func (w *wmsg) Get(length int) *[]byte { return bodyPool.Get(length) }

// Put releases the reference of one send.
func (w *wmsg) Put(*[]byte) { w.unref() }

const binary10 = 10 // max varint length

func (w *wmsg) size() int { return len(w.body) }

// deliveryFrame and peerMsgFrame make the codec send w as an
// AgentResponse{delivery: {message: w}} or a PeerFrame{message: w}.
type (
	deliveryFrame wmsg
	peerMsgFrame  wmsg
)

// buildWmsg encodes a message from its header and the raw encoding of its
// other fields.
func buildWmsg(hdr *agpv1.Header, rest [][]byte) (*wmsg, error) {
	hs := proto.Size(hdr)
	n := 1 + protowire.SizeVarint(uint64(hs)) + hs
	for _, r := range rest {
		n += len(r)
	}
	var bufp *[]byte
	var body []byte
	if !mem.IsBelowBufferPoolingThreshold(n) {
		bufp = bodyPool.Get(n)
		body = (*bufp)[:0]
	} else {
		body = make([]byte, 0, n)
	}
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendVarint(body, uint64(hs))
	body, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(body, hdr)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	for _, r := range rest {
		body = append(body, r...)
	}
	w := newWmsg(body, bufp)
	w.dest, w.fanout = hdr.Destination, hdr.Fanout
	return w, nil
}

// newWmsg wraps an encoded body; bufp is its pooled storage, if any.
func newWmsg(body []byte, bufp *[]byte) *wmsg {
	w := &wmsg{body: body}
	if bufp != nil && len(body) == len(*bufp) && cap(body) == cap(*bufp) && &body[0] == &(*bufp)[0] {
		w.bufp = bufp
		w.refs.Store(1)
	}
	// AgentResponse field 1 (delivery) { Delivery field 1 (message) { body } }
	inner := 1 + protowire.SizeVarint(uint64(len(body))) + len(body)
	d := protowire.AppendTag(w.dpre[:0], 1, protowire.BytesType)
	d = protowire.AppendVarint(d, uint64(inner))
	d = protowire.AppendTag(d, 1, protowire.BytesType)
	d = protowire.AppendVarint(d, uint64(len(body)))
	w.dn = uint8(len(d))
	// PeerFrame field 2 (message) { body }
	p := protowire.AppendTag(w.ppre[:0], 2, protowire.BytesType)
	p = protowire.AppendVarint(p, uint64(len(body)))
	w.pn = uint8(len(p))
	return w
}

// wmsgFromProto encodes m (slow path, for requests that were decoded as a
// whole).
func wmsgFromProto(m *agpv1.Message) (*agpv1.Header, [][]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return splitMessage(b)
}

var errMalformed = errors.New("malformed protobuf")

// splitMessage parses an encoded agpv1.Message into its header (nil if it
// has none) and the raw encoding of its other fields, which alias b.
func splitMessage(b []byte) (*agpv1.Header, [][]byte, error) {
	var hdr *agpv1.Header
	var rest [][]byte
	for len(b) > 0 {
		num, typ, n, m, err := consumeField(b)
		if err != nil {
			return nil, nil, err
		}
		field := b[:n+m]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(b[n:])
			if hdr == nil {
				hdr = &agpv1.Header{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, hdr); err != nil {
				return nil, nil, fmt.Errorf("%w: header: %v", errMalformed, err)
			}
		default:
			// Other fields, and a field 1 of another wire type (an unknown
			// field to protobuf), travel unchanged.
			// Keep adjacent fields in one segment.
			if k := len(rest); k > 0 && sameBacking(rest[k-1], field) {
				rest[k-1] = rest[k-1][:len(rest[k-1])+len(field)]
			} else {
				rest = append(rest, field)
			}
		}
		b = b[n+m:]
	}
	return hdr, rest, nil
}

// sameBacking reports whether b directly follows a in memory.
func sameBacking(a, b []byte) bool {
	return cap(a) > len(a) && len(b) > 0 && &a[:len(a)+1][len(a)] == &b[0]
}

// scanOneof scans an encoded message whose oneof fields are in [lo, hi]
// and returns the last such field's number and value, whether that field
// occurred only once, and field 1 as a varint (request_id).
func scanOneof(b []byte, lo, hi protowire.Number) (kind protowire.Number, val []byte, once bool, id uint64, err error) {
	var seen [8]int
	for len(b) > 0 {
		num, typ, n, m, ferr := consumeField(b)
		if ferr != nil {
			return 0, nil, false, 0, ferr
		}
		switch {
		case num == 1 && typ == protowire.VarintType:
			id, _ = protowire.ConsumeVarint(b[n:])
		case num >= lo && num <= hi && typ == protowire.BytesType:
			kind = num
			val, _ = protowire.ConsumeBytes(b[n:])
			if int(num) < len(seen) {
				seen[num]++
			}
		}
		b = b[n+m:]
	}
	once = kind != 0 && int(kind) < len(seen) && seen[kind] == 1
	return kind, val, once, id, nil
}

// singleField returns the value of field num (bytes) if it occurs exactly
// once in b and b is well formed.
func singleField(b []byte, num protowire.Number) ([]byte, bool) {
	var val []byte
	count := 0
	for len(b) > 0 {
		fnum, typ, n, m, err := consumeField(b)
		if err != nil {
			return nil, false
		}
		if fnum == num {
			if typ != protowire.BytesType {
				return nil, false
			}
			val, _ = protowire.ConsumeBytes(b[n:])
			count++
		}
		b = b[n+m:]
	}
	return val, count == 1
}

// rawFrame receives a frame undecoded. It may reference a gRPC receive
// buffer until release.
type rawFrame struct {
	b    []byte
	bufs mem.BufferSlice
}

func (r *rawFrame) release() {
	if r.bufs != nil {
		r.bufs.Free()
		r.bufs = nil
	}
	r.b = nil
}

// wireCodec is the gRPC codec of both listeners and the peer dialer: it
// sends deliveryFrame and peerMsgFrame from their shared encoding, receives
// rawFrame undecoded, and handles everything else as the standard proto
// codec does.
type wireCodec struct{}

var protoCodec = encoding.GetCodecV2(grpcproto.Name)

func (wireCodec) Name() string { return grpcproto.Name }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch f := v.(type) {
	case *deliveryFrame:
		return mem.BufferSlice{mem.SliceBuffer(f.dpre[:f.dn]), (*wmsg)(f).bodyBuffer()}, nil
	case *peerMsgFrame:
		return mem.BufferSlice{mem.SliceBuffer(f.ppre[:f.pn]), (*wmsg)(f).bodyBuffer()}, nil
	case peerBatchFrame:
		return mem.BufferSlice(f), nil
	case *agpv1.AgentResponse:
		if a := f.GetAck(); a != nil && len(f.ProtoReflect().GetUnknown()) == 0 && len(a.ProtoReflect().GetUnknown()) == 0 {
			return mem.BufferSlice{mem.SliceBuffer(encodeAck(a))}, nil
		}
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawFrame); ok {
		if len(data) != 1 {
			// A frame larger than one HTTP/2 data frame (a batch, or a
			// large message) arrives in pieces: join them in a pooled
			// buffer rather than a fresh allocation.
			buf := data.MaterializeToBuffer(bodyPool)
			r.bufs = mem.BufferSlice{buf}
			r.b = buf.ReadOnlyData()
			return nil
		}
		data.Ref()
		r.bufs = data
		r.b = data[0].ReadOnlyData()
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

// peerBatchFrame is a PeerFrame{batch: {messages: ...}} ready to send: the
// few bytes around each message and the shared message bodies.
type peerBatchFrame mem.BufferSlice

// batchEntrySize is the size of w as one Batch.messages entry.
func batchEntrySize(w *wmsg) int {
	return 1 + protowire.SizeVarint(uint64(len(w.body))) + len(w.body)
}

// newPeerBatchFrame builds the frame of items, whose entries take size
// bytes in all (the sum of batchEntrySize). Each item's reference passes to
// the frame, as for a single send.
func newPeerBatchFrame(items []peerItem, size int) peerBatchFrame {
	pre := make([]byte, 0, 1+binary10+len(items)*(1+binary10))
	pre = protowire.AppendTag(pre, 4, protowire.BytesType)
	pre = protowire.AppendVarint(pre, uint64(size))
	f := make(peerBatchFrame, 0, 1+2*len(items))
	start := 0
	for _, it := range items {
		pre = protowire.AppendTag(pre, 1, protowire.BytesType)
		pre = protowire.AppendVarint(pre, uint64(len(it.w.body)))
		f = append(f, mem.SliceBuffer(pre[start:len(pre):len(pre)]), it.w.bodyBuffer())
		start = len(pre)
	}
	return f
}

// bodyBuffer wraps the body for one send; for a pooled body the send's
// reference passes to the returned buffer.
func (w *wmsg) bodyBuffer() mem.Buffer {
	if w.bufp == nil {
		return mem.SliceBuffer(w.body)
	}
	return mem.NewBuffer(w.bufp, w)
}

// consumeField reads one field of an encoding: its number, wire type, the
// length of its tag and of its value. It refuses what protobuf refuses,
// including field numbers above protowire.MaxValidNumber.
func consumeField(b []byte) (protowire.Number, protowire.Type, int, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, 0, fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, 0, 0, fmt.Errorf("%w: field number %d out of range", errMalformed, num)
	}
	m := protowire.ConsumeFieldValue(num, typ, b[n:])
	if m < 0 {
		return 0, 0, 0, 0, fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(m))
	}
	return num, typ, n, m, nil
}

// encodeAck encodes AgentResponse{ack: a} without reflection: one Ack per
// Publish makes it the most frequent message the node encodes.
func encodeAck(a *agpv1.Ack) []byte {
	inner := 0
	if a.RequestId != 0 {
		inner += 1 + protowire.SizeVarint(a.RequestId)
	}
	if a.MessageId != "" {
		inner += 1 + protowire.SizeBytes(len(a.MessageId))
	}
	if a.LocalDeliveries != 0 {
		inner += 1 + protowire.SizeVarint(uint64(a.LocalDeliveries))
	}
	if a.RemoteDeliveries != 0 {
		inner += 1 + protowire.SizeVarint(uint64(a.RemoteDeliveries))
	}
	b := make([]byte, 0, 1+protowire.SizeVarint(uint64(inner))+inner)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if a.RequestId != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, a.RequestId)
	}
	if a.MessageId != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, a.MessageId)
	}
	if a.LocalDeliveries != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.LocalDeliveries))
	}
	if a.RemoteDeliveries != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.RemoteDeliveries))
	}
	return b
}
