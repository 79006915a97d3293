package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/internal/logging"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/e2ee"
	"github.com/agwproject/agw/sidecar/rpc"
	xdsclient "github.com/agwproject/agw/xds/client"
)

// sidecarEnv are the variables these tests set or clear.
var sidecarEnv = []string{"AGW_PEER_LISTEN", "AGW_STATIC_PEERS", "AGW_STATIC_ROUTES", "AGW_XDS_SERVER",
	"AGW_IDENTITY_DIR", "AGW_IDENTITY_CERT_FILE", "AGW_IDENTITY_KEY_FILE", "AGW_IDENTITY_BUNDLE_FILE",
	"AGW_NODE_ID", "POD_NAME", "POD_IP"}

// setSidecarEnv unsets sidecarEnv, then sets env (restored after the test).
func setSidecarEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range sidecarEnv {
		t.Setenv(k, "") // restores the old value after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// runSidecarCheck runs `agw sidecar --check-config args...` with the given
// variables and returns its output and error.
func runSidecarCheck(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	setSidecarEnv(t, env)
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"sidecar", "--check-config", "--node-id", "check-node", "--admin-listen", "127.0.0.1:0"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// writeIdentity writes an SVID of a new CA to a temporary directory.
func writeIdentity(t *testing.T) string {
	t.Helper()
	ca, err := identity.NewCA("check.agw")
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewWorkloadID("check.agw", "ns", "check-node")
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir, svid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSidecarHasNoPlaintextMode: a sidecar that can reach peers (default
// peer listener, static peers, a control plane) refuses to start without a
// workload identity; a local-only one (empty peer listen address) may, and
// then names no peers.
func TestSidecarHasNoPlaintextMode(t *testing.T) {
	idDir := writeIdentity(t)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		ok    string   // substring of the output when accepted
		wants []string // substrings of the error when refused
	}{
		{name: "default peer listener without identity", wants: []string{"AGW_IDENTITY_DIR", "always MLS-encrypted", "AGW_PEER_LISTEN= (empty)"}},
		{name: "static peer without identity", args: []string{"--peer-listen", "127.0.0.1:0", "--static-peer", "b=127.0.0.1:1"}, wants: []string{"workload identity is required"}},
		{name: "control plane without identity", env: map[string]string{"AGW_XDS_SERVER": "127.0.0.1:1", "POD_IP": "127.0.0.1"}, wants: []string{"workload identity is required"}},
		{name: "identity", env: map[string]string{"AGW_IDENTITY_DIR": idDir}, ok: "peers on :46358 (MLS)"},
		{name: "local only by variable", env: map[string]string{"AGW_PEER_LISTEN": ""}, ok: "no peers (local only)"},
		{name: "local only by flag", args: []string{"--peer-listen="}, ok: "no peers (local only)"},
		{name: "local only with static peer", env: map[string]string{"AGW_PEER_LISTEN": ""}, args: []string{"--static-peer", "b=127.0.0.1:1"}, wants: []string{"AGW_STATIC_PEERS is set but AGW_PEER_LISTEN is empty"}},
		{name: "local only with route to another node", args: []string{"--peer-listen=", "--static-route", "acme/x/y=b"}, wants: []string{`AGW_STATIC_ROUTES entry "acme/x/y=b" names another node`}},
		{name: "local only with control plane", env: map[string]string{"AGW_PEER_LISTEN": "", "AGW_XDS_SERVER": "127.0.0.1:1"}, wants: []string{"AGW_XDS_SERVER is set but AGW_PEER_LISTEN is empty"}},
		{name: "local only with route to itself", args: []string{"--peer-listen=", "--static-route", "acme/x/y=check-node"}, ok: "no peers (local only)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSidecarCheck(t, tc.env, tc.args...)
			if tc.ok != "" {
				if err != nil || !strings.Contains(out, tc.ok) {
					t.Fatalf("want accepted with %q, got %v\n%s", tc.ok, err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want refused:\n%s", out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestBuildSidecarRefusesPeersWithoutIdentity: buildSidecar itself (used
// by the command and the demo) refuses a sidecar with peers and no
// identity, also when its caller skipped validate.
func TestBuildSidecarRefusesPeersWithoutIdentity(t *testing.T) {
	s := localSetup(t)
	s.node.PeerListen = "127.0.0.1:0"
	if _, err := buildSidecar(s, logging.Discard(), newRegistry()); !errors.Is(err, errNeedIdentity) {
		t.Fatalf("buildSidecar without identity and with a peer listener: %v, want errNeedIdentity", err)
	}
}

// localSetup is a local-only sidecar on loopback ports, without identity.
func localSetup(t *testing.T) *sidecarSetup {
	t.Helper()
	setSidecarEnv(t, nil)
	s := &sidecarSetup{node: sidecar.DefaultConfig(), xds: xdsclient.DefaultConfig(), mls: e2ee.DefaultConfig(), rpc: rpc.DefaultConfig(), nodeSet: true}
	s.node.NodeID = "local-node"
	s.node.AgentListen, s.node.AdminListen, s.node.PeerListen = "127.0.0.1:0", "127.0.0.1:0", ""
	return s
}

// TestLocalOnlySidecar: a local-only sidecar without identity delivers
// between its own agents, and its peer listener refuses a peer even one
// that holds a certificate it trusts.
func TestLocalOnlySidecar(t *testing.T) {
	s := localSetup(t)
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	p, err := buildSidecar(s, logging.Discard(), newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if p.ownedIdentity == nil || p.mls == nil {
		t.Fatal("a local-only sidecar without identity should still have a (throwaway) identity and MLS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	select {
	case <-p.node.Ready():
	case err := <-done:
		t.Fatalf("sidecar stopped: %v", err)
	case <-ctx.Done():
		t.Fatal("sidecar not ready")
	}

	// Two local agents talk.
	sub, err := client.Dial(ctx, p.node.AgentAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Subscribe(ctx, "acme/local/inbox"); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Dial(ctx, p.node.AgentAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ack, err := pub.Publish(ctx, &agpv1.Message{Header: &agpv1.Header{Source: "acme/local/sender/1", Destination: "acme/local/inbox"}, Payload: []byte("hi")})
	if err != nil || ack.GetLocalDeliveries() != 1 {
		t.Fatalf("local publish: ack %v, err %v", ack, err)
	}
	select {
	case m := <-sub.Deliveries():
		if string(m.GetPayload()) != "hi" {
			t.Fatalf("delivered %q", m.GetPayload())
		}
	case <-ctx.Done():
		t.Fatal("nothing delivered locally")
	}

	// A peer with a certificate the sidecar trusts (its own) is refused.
	peerAddr := p.node.PeerAddr().String()
	if !strings.HasPrefix(peerAddr, "127.0.0.1:") {
		t.Fatalf("local-only peer listener on %s, want loopback", peerAddr)
	}
	cc, err := grpc.NewClient(peerAddr, grpc.WithTransportCredentials(credentials.NewTLS(p.ownedIdentity.ClientTLSConfig())))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	link, err := agpv1.NewPeerClient(cc).Link(ctx)
	if err == nil {
		_ = link.Send(&agpv1.PeerFrame{})
		_, err = link.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "local-only") {
		t.Fatalf("peer link to a local-only sidecar: %v, want FailedPrecondition (local-only)", err)
	}
}
