package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// echoGateway acks subscribes, refuses names starting with "bad", and
// delivers every published message back to the publisher.
type echoGateway struct {
	agpv1.UnimplementedGatewayServer
}

func (echoGateway) Connect(s grpc.BidiStreamingServer[agpv1.AgentRequest, agpv1.AgentResponse]) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		switch k := req.Kind.(type) {
		case *agpv1.AgentRequest_Subscribe:
			if k.Subscribe.Name[:3] == "bad" {
				_ = s.Send(&agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Error{Error: &agpv1.Error{
					RequestId: req.RequestId, Code: int32(codes.InvalidArgument), Message: "bad name"}}})
				continue
			}
			_ = s.Send(&agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Ack{Ack: &agpv1.Ack{RequestId: req.RequestId}}})
		case *agpv1.AgentRequest_Publish:
			if k.Publish.Message.GetHeader().GetDestination() == "close" {
				return status.Error(codes.ResourceExhausted, "closing on purpose")
			}
			_ = s.Send(&agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Delivery{Delivery: &agpv1.Delivery{Message: k.Publish.Message}}})
			_ = s.Send(&agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Ack{Ack: &agpv1.Ack{RequestId: req.RequestId, LocalDeliveries: 1}}})
		}
	}
}

func startGateway(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	agpv1.RegisterGatewayServer(srv, echoGateway{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestClientRoundTrip(t *testing.T) {
	addr := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	if err := c.Subscribe(ctx, "org/ns/svc"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Subscribe(ctx, "bad/ns/svc"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad subscribe: got %v, want InvalidArgument", err)
	}
	msg := &agpv1.Message{Header: &agpv1.Header{Destination: "org/ns/svc"}, Payload: []byte("hi")}
	ack, err := c.Publish(ctx, msg)
	if err != nil || ack.GetLocalDeliveries() != 1 {
		t.Fatalf("publish: %v %v", ack, err)
	}
	select {
	case got := <-c.Deliveries():
		if string(got.Payload) != "hi" {
			t.Fatalf("delivery payload %q", got.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}

	// A stream-level status reaches pending calls and Err.
	_, err = c.Publish(ctx, &agpv1.Message{Header: &agpv1.Header{Destination: "close"}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("closing publish: got %v", err)
	}
	<-c.Done()
	if status.Code(c.Err()) != codes.ResourceExhausted {
		t.Fatalf("Err: %v", c.Err())
	}
	if err := c.Subscribe(ctx, "org/ns/x"); err == nil {
		t.Fatal("call after stream end succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestPublishContextCancel(t *testing.T) {
	addr := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dead, cancelDead := context.WithCancel(ctx)
	cancelDead()
	if err := c.Subscribe(dead, "org/ns/svc"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
