package rpc

import (
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// startStdApp runs an Echo server that also serves the standard health and
// reflection services.
func startStdApp(t *testing.T) (*health.Server, string) {
	t.Helper()
	srv := grpc.NewServer()
	(&samplev1.Server{Name: "b1"}).Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus(samplev1.Echo_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { hs.Shutdown(); srv.Stop(); <-done })
	return hs, ln.Addr().String()
}

func newStdPair(t *testing.T) (*health.Server, *grpc.ClientConn) {
	t.Helper()
	hs, addr := startStdApp(t)
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b", agent: "acme/demo/echo/b1", app: addr},
	}, nil)
	return hs, dialConn(t, m.nodes[0].layer, "echo.demo")
}

// TestHealthThroughMesh: grpc-go's standard health client checks and
// watches the target app's health service through two sidecars.
func TestHealthThroughMesh(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	hs, cc := newStdPair(t)
	hc := healthpb.NewHealthClient(cc)

	for _, svc := range []string{"", samplev1.Echo_ServiceDesc.ServiceName} {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q) = %v, want SERVING", svc, r.GetStatus())
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(unknown service) = %v, want NOT_FOUND from the app", err)
	}

	// Watch is server streaming: the first status, then every change.
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: samplev1.Echo_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Recv()
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first = %v %v, want SERVING", r, err)
	}
	hs.SetServingStatus(samplev1.Echo_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	r, err = w.Recv()
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after change = %v %v, want NOT_SERVING", r, err)
	}
	r2, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: samplev1.Echo_ServiceDesc.ServiceName})
	if err != nil || r2.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Check after change = %v %v", r2, err)
	}
}

// TestReflectionThroughMesh: the standard reflection client (a
// bidirectional stream) lists the target app's services and fetches the
// descriptor of its Echo service through two sidecars.
func TestReflectionThroughMesh(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	_, cc := newStdPair(t)
	s, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{ListServices: ""}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sv := range r.GetListServicesResponse().GetService() {
		got = append(got, sv.GetName())
	}
	for _, want := range []string{samplev1.Echo_ServiceDesc.ServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(got, want) {
			t.Fatalf("ListServices = %v, missing %s", got, want)
		}
	}

	// Second request on the same stream: the file that defines Echo.
	if err := s.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "sample.v1.Echo"}}); err != nil {
		t.Fatal(err)
	}
	r, err = s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	files := r.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) == 0 {
		t.Fatalf("FileContainingSymbol: %v", r)
	}
	var methods []string
	for _, b := range files {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(b, &fd); err != nil {
			t.Fatal(err)
		}
		for _, sv := range fd.GetService() {
			if fd.GetPackage()+"."+sv.GetName() == "sample.v1.Echo" {
				for _, m := range sv.GetMethod() {
					methods = append(methods, m.GetName())
				}
			}
		}
	}
	slices.Sort(methods)
	if !slices.Equal(methods, []string{"Chat", "Collect", "Count", "Say"}) {
		t.Fatalf("Echo methods from reflection = %v", methods)
	}

	// An unknown symbol is an error answer on the stream, not a failed call.
	if err := s.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "no.such.Symbol"}}); err != nil {
		t.Fatal(err)
	}
	if r, err = s.Recv(); err != nil || r.GetErrorResponse() == nil {
		t.Fatalf("unknown symbol: %v %v, want an error response", r, err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err == nil {
		t.Fatal("reflection stream did not end after CloseSend")
	} else if !errors.Is(err, io.EOF) {
		t.Fatalf("reflection stream ended with %v, want EOF", err)
	}
}
