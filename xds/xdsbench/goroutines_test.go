package xdsbench

import (
	"slices"
	"testing"
)

const sampleDump = `goroutine profile: total 23
10 @ 0x49042e 0x46c385 0x9031ca 0x903978 0x91aadc 0x498001
#	0x9031c9	google.golang.org/grpc/internal/transport.(*controlBuffer).get+0x109	/x/controlbuf.go:1
#	0x903977	google.golang.org/grpc/internal/transport.(*loopyWriter).run+0x77	/x/controlbuf.go:2
#	0x91aadb	google.golang.org/grpc/internal/transport.NewServerTransport.func3+0xdb	/x/http2_server.go:3

10 @ 0x49042e 0x46c385 0x928765 0xd67e74 0x498001
#	0x928764	google.golang.org/grpc/internal/transport.(*recvBufferReader).readMessageHeader+0xa4	/x/transport.go:1
#	0xd67e73	github.com/envoyproxy/go-control-plane/pkg/server/delta/v3.(*server).DeltaStreamHandler.func1+0x93	/x/server.go:2

2 @ 0x49042e 0x46c385 0x921fa5 0x498001
#	0x921fa4	google.golang.org/grpc/internal/transport.(*http2Server).keepalive+0x1e4	/x/http2_server.go:4

1 @ 0x4e72a5 0x4e5458 0x498001
#	0x4e72a4	runtime/pprof.writeRuntimeProfile+0x44	/x/pprof.go:1
`

func TestGoroutineKinds(t *testing.T) {
	got := goroutineKinds([]byte(sampleDump), 10)
	want := []GoroutineKind{
		{Kind: "transport.(*controlBuffer).get in transport.NewServerTransport.func3", PerNode: 1},
		{Kind: "transport.(*recvBufferReader).readMessageHeader in v3.(*server).DeltaStreamHandler.func1", PerNode: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kinds\n got %+v\nwant %+v", got, want)
	}
	// Rare kinds count once every other node holds one.
	if got := goroutineKinds([]byte(sampleDump), 4); len(got) != 3 || got[2].PerNode != 0.5 {
		t.Fatalf("kinds for 4 nodes: %+v", got)
	}
	if got := goroutineKinds([]byte("garbage\n\n1 @\n#\tx\n"), 1); len(got) != 0 {
		t.Fatalf("kinds of garbage: %+v", got)
	}
}
