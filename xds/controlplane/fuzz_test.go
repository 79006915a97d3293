package controlplane

import (
	"testing"

	"google.golang.org/protobuf/proto"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// FuzzMirrorRequest decodes arbitrary bytes as a MirrorRequest and runs the
// validation the mirror server applies: it must never panic, and anything it
// accepts must satisfy the invariants the index relies on.
func FuzzMirrorRequest(f *testing.F) {
	seeds := []*agpv1.MirrorRequest{
		{NodeId: "node-a", PeerAddress: "10.0.0.1:46358", Sequence: 1, Full: true, Changes: []*agpv1.SubscriptionChange{{Op: agpv1.SubscriptionChange_OP_ADD, Topic: "acme/prod/svc"}}},
		{Sequence: 2, Changes: []*agpv1.SubscriptionChange{{Op: agpv1.SubscriptionChange_OP_REMOVE, Topic: "acme/prod/svc"}}},
		{Sequence: 3, Changes: []*agpv1.SubscriptionChange{{Op: 9, Topic: "*"}}},
		{NodeId: "Bad Node", PeerAddress: ":1", Sequence: 0},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true, uint64(0))
		f.Add(b, false, uint64(1))
	}
	f.Add([]byte{0xff, 0x01}, true, uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, first bool, lastSeq uint64) {
		req := &agpv1.MirrorRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			return
		}
		if err := validateMirrorRequest(req, first, lastSeq, 100, xds.ValidateTopic); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if req.GetSequence() <= lastSeq {
			t.Fatalf("accepted sequence %d after %d", req.GetSequence(), lastSeq)
		}
		if first && (xds.ValidateNodeID(req.GetNodeId()) != nil || !req.GetFull()) {
			t.Fatalf("accepted a bad first message %v", req)
		}
		for _, ch := range req.GetChanges() {
			if xds.ValidateTopic(ch.GetTopic()) != nil {
				t.Fatalf("accepted bad topic %q", ch.GetTopic())
			}
			if ch.GetOp() != agpv1.SubscriptionChange_OP_ADD && (req.GetFull() || ch.GetOp() != agpv1.SubscriptionChange_OP_REMOVE) {
				t.Fatalf("accepted op %v (full %v)", ch.GetOp(), req.GetFull())
			}
		}
	})
}
