package rpc

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// rawMsg is a gRPC message kept as its encoded bytes.
type rawMsg struct {
	b []byte
	// Room for Marshal's answer, so that sending allocates nothing more.
	sb  mem.SliceBuffer
	out [1]mem.Buffer
}

// rawCodec moves messages as opaque bytes, so the layer carries calls of
// any schema. It answers to the name "proto", which gRPC puts on the wire.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("rpc raw codec: cannot marshal %T", v)
	}
	m.sb = m.b
	m.out[0] = &m.sb
	return m.out[:], nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("rpc raw codec: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize()
	return nil
}
