package samplev1

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Server is a ready-made Echo server for demos, tests and benchmarks.
// Every answer says which server sent it (Name).
type Server struct {
	UnimplementedEchoServer
	Name string
	// Cancelled counts calls whose context ended before the handler was
	// done (the caller cancelled, or the deadline passed).
	Cancelled atomic.Int64
	// Calls counts handled calls.
	Calls atomic.Int64
}

// Register adds s to srv.
func (s *Server) Register(srv grpc.ServiceRegistrar) { RegisterEchoServer(srv, s) }

func pad(n int32) []byte {
	if n <= 0 {
		return nil
	}
	return make([]byte, n)
}

// echoHeaders sends the request's "x-echo" metadata back as headers and
// trailers ("x-echo-trailer"), so tests see both travel.
func echoHeaders(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-echo"); len(v) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo", strings.Join(v, ",")))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", strings.Join(v, ",")))
	}
	if v := md.Get("agw-caller"); len(v) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-caller", v[0]))
	}
}

// wait sleeps d or until ctx ends (and counts that).
func (s *Server) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		s.Cancelled.Add(1)
		return status.FromContextError(ctx.Err()).Err()
	}
}

func failure(code int32, text string) error {
	if code == 0 {
		return nil
	}
	st := status.New(codes.Code(code), "failing as asked: "+text)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "ASKED", Domain: "sample.v1", Metadata: map[string]string{"text": text}}); err == nil {
		st = d
	}
	return st.Err()
}

// Say answers one request.
func (s *Server) Say(ctx context.Context, r *SayRequest) (*SayResponse, error) {
	s.Calls.Add(1)
	echoHeaders(ctx)
	if err := s.wait(ctx, time.Duration(r.GetDelayMillis())*time.Millisecond); err != nil {
		return nil, err
	}
	if err := failure(r.GetFailCode(), r.GetText()); err != nil {
		return nil, err
	}
	return &SayResponse{Text: r.GetText(), From: s.Name, Pad: pad(r.GetPadBytes())}, nil
}

// Count streams 1..n.
func (s *Server) Count(r *CountRequest, stream grpc.ServerStreamingServer[CountResponse]) error {
	s.Calls.Add(1)
	ctx := stream.Context()
	echoHeaders(ctx)
	for i := int32(1); i <= r.GetN(); i++ {
		if i > 1 {
			if err := s.wait(ctx, time.Duration(r.GetIntervalMillis())*time.Millisecond); err != nil {
				return err
			}
		}
		if err := stream.Send(&CountResponse{I: i, From: s.Name, Pad: pad(r.GetPadBytes())}); err != nil {
			return err
		}
	}
	return nil
}

// Collect joins every request's text with spaces.
func (s *Server) Collect(stream grpc.ClientStreamingServer[SayRequest, SayResponse]) error {
	s.Calls.Add(1)
	echoHeaders(stream.Context())
	var parts []string
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&SayResponse{Text: strings.Join(parts, " "), From: s.Name})
		}
		if err != nil {
			return err
		}
		if err := failure(r.GetFailCode(), r.GetText()); err != nil {
			return err
		}
		parts = append(parts, r.GetText())
	}
}

// Chat answers each request as it arrives.
func (s *Server) Chat(stream grpc.BidiStreamingServer[SayRequest, SayResponse]) error {
	s.Calls.Add(1)
	ctx := stream.Context()
	echoHeaders(ctx)
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				s.Cancelled.Add(1)
			}
			return err
		}
		if err := s.wait(ctx, time.Duration(r.GetDelayMillis())*time.Millisecond); err != nil {
			return err
		}
		if err := failure(r.GetFailCode(), r.GetText()); err != nil {
			return err
		}
		if err := stream.Send(&SayResponse{Text: fmt.Sprintf("re: %s", r.GetText()), From: s.Name, Pad: pad(r.GetPadBytes())}); err != nil {
			return err
		}
	}
}
