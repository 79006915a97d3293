package rpc

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func marshalAny(a *anypb.Any) ([]byte, error) { return proto.Marshal(a) }

func unmarshalAny(b []byte, a *anypb.Any) error { return proto.Unmarshal(b, a) }
