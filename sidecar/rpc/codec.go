package rpc

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// rawMsg is a gRPC message kept as its encoded bytes.
type rawMsg struct{ b []byte }

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
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("rpc raw codec: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize()
	return nil
}
