package sidecar

import (
	"context"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

// testNodeCfg is a config that needs no listeners (the node is not run).
func testNodeCfg(id string) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.AgentListen = "127.0.0.1:0"
	c.PeerListen = "127.0.0.1:0"
	c.AdminListen = ""
	c.QueueSize = 8
	c.PeerQueueWait = 10 * time.Millisecond
	return c
}

func newTestNode(t testing.TB, cfg Config, opts ...Option) *Node {
	t.Helper()
	n, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func (n *Node) testConn(t testing.TB) *agentConn {
	c := n.newAgentConn("127.0.0.1:1")
	n.conns.add(&c.connEntry)
	t.Cleanup(func() { c.kill() })
	return c
}

type routeMap map[string][]*agpv1.RouteEndpoint

func (r routeMap) Endpoints(topic string) []*agpv1.RouteEndpoint { return r[topic] }
func (r routeMap) Watch(string)                                  {}

func ep(node string) *agpv1.RouteEndpoint {
	return &agpv1.RouteEndpoint{NodeId: node, Status: agpv1.RouteEndpoint_STATUS_ACTIVE}
}

func msgTo(dest string, fanout uint32) *agpv1.Message {
	return &agpv1.Message{Header: &agpv1.Header{Destination: dest, Fanout: fanout, HopLimit: 8}, Payload: []byte("p")}
}

// wm puts m in wire form.
func wm(m *agpv1.Message) *wmsg {
	hdr, rest, err := wmsgFromProto(m)
	if err != nil {
		panic(err)
	}
	w, err := buildWmsg(hdr, rest)
	if err != nil {
		panic(err)
	}
	return w
}

// decodeDelivery decodes what the codec sends for a delivery of w.
func decodeDelivery(w *wmsg) *agpv1.Message {
	bufs, err := wireCodec{}.Marshal((*deliveryFrame)(w))
	if err != nil {
		panic(err)
	}
	var resp agpv1.AgentResponse
	if err := proto.Unmarshal(bufs.Materialize(), &resp); err != nil {
		panic(err)
	}
	return resp.GetDelivery().GetMessage()
}

// deliveries drains c's queue and returns the delivered messages.
func deliveries(c *agentConn) []*agpv1.Message {
	var out []*agpv1.Message
	for {
		select {
		case it := <-c.q:
			if it.w != nil {
				out = append(out, decodeDelivery(it.w))
			}
		default:
			return out
		}
	}
}

func encode(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (n *Node) dropCount(reason string) float64 { return testutil.ToFloat64(n.m.drops[reason]) }

func ctxTest(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
