package controlplane

import (
	"fmt"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds"
)

// mirrorError is a malformed mirror message; reason labels the metric.
type mirrorError struct {
	reason string
	msg    string
}

func (e *mirrorError) Error() string { return e.msg }

func badMirror(reason, format string, args ...any) error {
	return &mirrorError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// validateMirrorRequest checks one mirror message before anything of it is
// applied. first is true for the stream's first message; lastSeq is the
// previous message's sequence (0 before the first).
func validateMirrorRequest(req *agpv1.MirrorRequest, first bool, lastSeq uint64, maxTopics int, validTopic func(string) error) error {
	if req == nil {
		return badMirror("empty", "empty mirror message")
	}
	if first {
		if err := xds.ValidateNodeID(req.GetNodeId()); err != nil {
			return badMirror("bad_node_id", "first mirror message: %v", err)
		}
		if err := xds.ValidateAddress(req.GetPeerAddress()); err != nil {
			return badMirror("bad_address", "first mirror message: peer %v", err)
		}
		if !req.GetFull() {
			return badMirror("first_not_full", "first mirror message must be full (the whole subscription table)")
		}
	}
	if req.GetSequence() == 0 {
		return badMirror("bad_sequence", "mirror sequence 0: sequences start at 1")
	}
	if req.GetSequence() <= lastSeq {
		return badMirror("bad_sequence", "mirror sequence %d not above the previous %d", req.GetSequence(), lastSeq)
	}
	if len(req.GetChanges()) > maxTopics {
		return badMirror("too_many_topics", "mirror message has %d changes, the limit is %d", len(req.GetChanges()), maxTopics)
	}
	for i, ch := range req.GetChanges() {
		switch ch.GetOp() {
		case agpv1.SubscriptionChange_OP_ADD:
		case agpv1.SubscriptionChange_OP_REMOVE:
			if req.GetFull() {
				return badMirror("bad_op", "change %d: REMOVE in a full table (every change of a full message is an ADD)", i)
			}
		default:
			return badMirror("bad_op", "change %d: unknown op %d", i, int32(ch.GetOp()))
		}
		if err := validTopic(ch.GetTopic()); err != nil {
			return badMirror("bad_topic", "change %d: %v", i, err)
		}
	}
	return nil
}
