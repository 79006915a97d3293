package sidecar_test

import (
	"context"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A Publish with request id 0 is delivered but not acknowledged; one with an
// id is acknowledged; an invalid one with id 0 still gets its error.
func TestPublishRequestIDZeroIsNotAcked(t *testing.T) {
	n := sidecartest.Start(t, sidecartest.Config("noack"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := sidecartest.DialAgent(t, n)
	if err := sub.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(n.AgentAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := agpv1.NewGatewayClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(id uint64, dest string) {
		t.Helper()
		err := stream.Send(&agpv1.AgentRequest{RequestId: id, Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{
			Message: &agpv1.Message{Header: &agpv1.Header{Destination: dest}, Payload: []byte("x")}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	pub(0, topic)
	pub(0, "Not A Name")
	pub(9, topic)
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e := first.GetError(); e == nil || e.GetRequestId() != 0 {
		t.Fatalf("first answer: got %v, want the error of the invalid id-0 publish", first)
	}
	second, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if a := second.GetAck(); a == nil || a.GetRequestId() != 9 || a.GetLocalDeliveries() != 1 {
		t.Fatalf("second answer: got %v, want the Ack of request 9", second)
	}
	for i := 0; i < 2; i++ {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
}
