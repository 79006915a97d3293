package rpc

import (
	"errors"
	"fmt"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/protobuf/proto"
)

// Limits of a well-formed frame.
const (
	maxCallIDLen   = 64
	maxMethodLen   = 1024
	maxMDEntries   = 256
	maxMDValues    = 64
	maxDetails     = 64
	maxFrameWindow = 1 << 20
)

// ErrBadFrame is wrapped by every frame decoding error.
var ErrBadFrame = errors.New("rpc: bad frame")

// EncodeFrame serializes f.
func EncodeFrame(f *agpv1.RpcFrame) ([]byte, error) {
	b, err := proto.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("rpc: encode frame: %w", err)
	}
	return b, nil
}

// DecodeFrame parses and checks one frame. It never panics on bad input.
func DecodeFrame(b []byte) (*agpv1.RpcFrame, error) {
	f := &agpv1.RpcFrame{}
	if err := proto.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if err := checkFrame(f); err != nil {
		return nil, err
	}
	return f, nil
}

func checkFrame(f *agpv1.RpcFrame) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadFrame, fmt.Sprintf(format, a...))
	}
	id := f.GetCallId()
	if len(id) == 0 || len(id) > maxCallIDLen {
		return bad("call id must be 1..%d bytes, got %d", maxCallIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return bad("call id must be lowercase hex")
		}
	}
	if f.GetSeq() == 0 {
		return bad("seq must start at 1")
	}
	if f.GetWindow() > maxFrameWindow {
		return bad("window %d above %d", f.GetWindow(), maxFrameWindow)
	}
	if o := f.GetOpen(); o != nil {
		if f.GetReply() {
			return bad("open on a reply frame")
		}
		m := o.GetMethod()
		if len(m) < 3 || len(m) > maxMethodLen || m[0] != '/' {
			return bad("method %.64q is not /package.Service/Method", m)
		}
		if o.GetTimeoutNanos() < 0 {
			return bad("negative timeout")
		}
		if o.GetReplyTo() == "" {
			return bad("open without reply_to")
		}
		if err := checkMD(o.GetMetadata()); err != nil {
			return err
		}
	}
	if a := f.GetAccept(); a != nil && (!f.GetReply() || a.GetTopic() == "") {
		return bad("accept must be a reply and name a topic")
	}
	if err := checkMD(f.GetHeaders()); err != nil {
		return err
	}
	if t := f.GetTrailers(); t != nil {
		if len(t.GetDetails()) > maxDetails {
			return bad("%d status details, at most %d", len(t.GetDetails()), maxDetails)
		}
		if err := checkMD(t.GetMetadata()); err != nil {
			return err
		}
	}
	return nil
}

func checkMD(md *agpv1.RpcMetadata) error {
	if md == nil {
		return nil
	}
	if len(md.GetEntries()) > maxMDEntries {
		return fmt.Errorf("%w: %d metadata entries, at most %d", ErrBadFrame, len(md.GetEntries()), maxMDEntries)
	}
	for _, e := range md.GetEntries() {
		if len(e.GetValues()) > maxMDValues {
			return fmt.Errorf("%w: metadata key %.64q has %d values, at most %d", ErrBadFrame, e.GetKey(), len(e.GetValues()), maxMDValues)
		}
	}
	return nil
}
