package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/internal/identity"
)

var (
	buildOnce sync.Once
	agwPath   string
	buildErr  error
)

// agwBinary builds cmd/agw once per test run.
func agwBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agw-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		agwPath = filepath.Join(dir, "agw")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", agwPath, "../cmd/agw").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return agwPath
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a started agw process whose output is kept for failure reports.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startAgw(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(agwBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agw %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// testCA is a throwaway CA of trust domain td whose SVIDs the test's
// sidecars load from files (AGW_IDENTITY_DIR), as from a mounted secret.
type testCA struct {
	*identity.CA
	td string
}

func newTestCA(t *testing.T, td string) *testCA {
	t.Helper()
	ca, err := identity.NewCA(td)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{CA: ca, td: td}
}

// identityEnv issues an SVID for sidecar name, writes it with the CA's
// bundle to a temporary directory and returns the variable that points the
// sidecar at it.
func (ca *testCA) identityEnv(t *testing.T, name string) string {
	t.Helper()
	id, err := identity.NewWorkloadID(ca.td, "test", name)
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
	return "AGW_IDENTITY_DIR=" + dir
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// TestEndToEndProcesses runs the real binary: a control plane, two sidecars
// and the pub/sub tools as separate processes on loopback.
func TestEndToEndProcesses(t *testing.T) {
	cp, cpAdmin := freePort(t), freePort(t)
	startAgw(t, nil, "control-plane", "--listen", cp, "--admin-listen", cpAdmin, "--warmup", "0s", "--log-format", "text")
	waitOK(t, "http://"+cpAdmin+"/readyz")

	type sc struct{ agent, peer, admin string }
	sidecars := map[string]sc{}
	ca := newTestCA(t, "e2e.agw")
	for _, name := range []string{"e2e-a", "e2e-b"} {
		s := sc{freePort(t), freePort(t), freePort(t)}
		sidecars[name] = s
		startAgw(t, []string{"AGW_XDS_SERVER=" + cp, ca.identityEnv(t, name)}, "sidecar", "--node-id", name,
			"--agent-listen", s.agent, "--peer-listen", s.peer, "--admin-listen", s.admin,
			"--xds-backoff-initial", "50ms", "--log-format", "text")
	}
	for _, s := range sidecars {
		waitOK(t, "http://"+s.admin+"/readyz")
	}

	// agw sub on B prints each message; agw pub on A publishes until one arrives
	// (the route reaches A once B's subscription has gone through the control plane).
	sub := exec.Command(agwBinary(t), "sub", "--sidecar", sidecars["e2e-b"].agent, "example/e2e/news")
	subOut, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	subErr := &syncBuffer{}
	sub.Stderr = subErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(subOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for got == "" && time.Now().Before(deadline) {
		if !strings.Contains(subErr.String(), "subscribed to") {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		out, err := exec.Command(agwBinary(t), "pub", "--sidecar", sidecars["e2e-a"].agent,
			"--source", "example/e2e/publisher/1", "example/e2e/news", "hello across processes").CombinedOutput()
		if err != nil {
			t.Fatalf("agw pub: %v\n%s", err, out)
		}
		select {
		case l := <-lines:
			got = l
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got != "example/e2e/news <- example/e2e/publisher/1: hello across processes" {
		t.Fatalf("agw sub printed %q (stderr %q)", got, subErr.String())
	}

	// The control plane's debug dump shows the route while B's agent is subscribed.
	if routes := get(t, "http://"+cpAdmin+"/debug/routes"); !strings.Contains(routes, "example/e2e/news") || !strings.Contains(routes, "e2e-b") {
		t.Fatalf("control plane /debug/routes lacks the route:\n%s", routes)
	}
	// The subscriber goes away: its sidecar withdraws the subscription and the
	// control plane drops the route (the node itself is still connected).
	if err := sub.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := sub.Wait(); err != nil {
		t.Fatalf("agw sub did not exit cleanly on SIGTERM: %v (stderr %q)", err, subErr.String())
	}
	deadline = time.Now().Add(20 * time.Second)
	for strings.Contains(get(t, "http://"+cpAdmin+"/debug/routes"), "example/e2e/news") {
		if time.Now().After(deadline) {
			t.Fatal("route still present 20s after the only subscriber left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withoutAGWEnv is the test's environment without AGW_* variables.
func withoutAGWEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGW_") {
			out = append(out, kv)
		}
	}
	return out
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return body.String()
}

// TestSidecarShutdownOnSIGTERM: a sidecar process exits 0 soon after SIGTERM.
func TestSidecarShutdownOnSIGTERM(t *testing.T) {
	admin := freePort(t)
	p := startAgw(t, []string{newTestCA(t, "sigterm.agw").identityEnv(t, "sigterm")}, "sidecar", "--node-id", "sigterm", "--agent-listen", freePort(t),
		"--peer-listen", freePort(t), "--admin-listen", admin, "--shutdown-timeout", "2s")
	waitOK(t, "http://"+admin+"/readyz")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sidecar exited with %v after SIGTERM:\n%s", err, p.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sidecar still running 15s after SIGTERM")
	}
}

// TestCheckConfig: --check-config accepts a good configuration and explains
// a bad one; a sidecar with peers and no identity is refused (there is no
// plaintext mode), a local-only one (empty peer listen address) is not.
func TestCheckConfig(t *testing.T) {
	bin := agwBinary(t)
	checkWith := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "sidecar", "--check-config", "--node-id", "ok-node")
		cmd.Env = append(withoutAGWEnv(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := checkWith(newTestCA(t, "check.agw").identityEnv(t, "ok-node"))
	if err != nil || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "(MLS)") {
		t.Fatalf("good config: %v\n%s", err, out)
	}
	out, err = checkWith()
	if err == nil || !strings.Contains(out, "AGW_IDENTITY_DIR") || !strings.Contains(out, "AGW_PEER_LISTEN= (empty)") {
		t.Fatalf("peers without identity: want an error naming AGW_IDENTITY_DIR and the local-only way, got %v\n%s", err, out)
	}
	out, err = checkWith("AGW_PEER_LISTEN=")
	if err != nil || !strings.Contains(out, "no peers (local only)") {
		t.Fatalf("local-only config: %v\n%s", err, out)
	}
	out, err = checkWith("AGW_PEER_LISTEN=", "AGW_STATIC_PEERS=b=127.0.0.1:1")
	if err == nil || !strings.Contains(out, "AGW_STATIC_PEERS") {
		t.Fatalf("local-only with a static peer: want an error naming AGW_STATIC_PEERS, got %v\n%s", err, out)
	}
	out, err = checkWith("AGW_PEER_LISTEN=nonsense", "AGW_XDS_SERVER=cp.example:18000")
	if err == nil || !strings.Contains(out, "AGW_PEER_LISTEN") {
		t.Fatalf("bad peer address: want an error naming AGW_PEER_LISTEN, got %v\n%s", err, out)
	}
	cpOut, err := exec.Command(bin, "control-plane", "--check-config", "--grace-period", "-1s").CombinedOutput()
	if err == nil || !strings.Contains(string(cpOut), "AGW_CP_GRACE_PERIOD") {
		t.Fatalf("bad grace period: want an error naming AGW_CP_GRACE_PERIOD, got %v\n%s", err, cpOut)
	}
}

// TestSIGTERMDuringTrafficLosesNoAckedMessage: sidecar A is sent SIGTERM
// while its agent publishes to a subscriber behind sidecar B; every message
// A acknowledged as handed to B arrives at B's subscriber.
func TestSIGTERMDuringTrafficLosesNoAckedMessage(t *testing.T) {
	ca := newTestCA(t, "drain.agw")
	bAgent, bPeer, bAdmin := freePort(t), freePort(t), freePort(t)
	startAgw(t, []string{ca.identityEnv(t, "drain-b")}, "sidecar", "--node-id", "drain-b", "--agent-listen", bAgent,
		"--peer-listen", bPeer, "--admin-listen", bAdmin)
	aAgent, aAdmin := freePort(t), freePort(t)
	a := startAgw(t, []string{ca.identityEnv(t, "drain-a")}, "sidecar", "--node-id", "drain-a", "--agent-listen", aAgent,
		"--peer-listen", freePort(t), "--admin-listen", aAdmin, "--shutdown-timeout", "5s",
		"--static-peer", "drain-b="+bPeer, "--static-route", "example/drain/sink=drain-b")
	waitOK(t, "http://"+bAdmin+"/readyz")
	waitOK(t, "http://"+aAdmin+"/readyz")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := client.Dial(ctx, bAgent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	if err := sub.Subscribe(ctx, "example/drain/sink"); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Dial(ctx, aAgent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })

	received := make(chan string, 100000)
	go func() {
		for m := range sub.Deliveries() {
			received <- string(m.GetPayload())
		}
	}()
	// Eight publishers keep many messages in flight when the signal lands.
	var (
		mu        sync.Mutex
		acked     []string
		sent      int
		signalled bool
		wg        sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 50000; i++ {
				payload := fmt.Sprintf("w%d-m%d", w, i)
				ack, err := pub.Publish(ctx, &agpv1.Message{
					Header:  &agpv1.Header{Source: "example/drain/source/1", Destination: "example/drain/sink"},
					Payload: []byte(payload),
				})
				mu.Lock()
				sent++
				if err == nil && ack.GetRemoteDeliveries() == 1 {
					acked = append(acked, payload)
				}
				if len(acked) >= 2000 && !signalled {
					signalled = true
					if serr := a.cmd.Process.Signal(syscall.SIGTERM); serr != nil {
						t.Error(serr)
					}
				}
				mu.Unlock()
				if err != nil {
					return // draining or gone: no more acks
				}
			}
		}(w)
	}
	wg.Wait()
	if !signalled {
		t.Fatalf("only %d of %d publishes were acknowledged before the streams failed", len(acked), sent)
	}
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sidecar A exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sidecar A still running 20s after SIGTERM")
	}
	got := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(got) < len(acked) {
		select {
		case p := <-received:
			got[p] = true
		case <-deadline:
			missing := 0
			for _, p := range acked {
				if !got[p] {
					missing++
				}
			}
			t.Fatalf("%d of %d acknowledged messages never arrived at B", missing, len(acked))
		}
	}
	for _, p := range acked {
		if !got[p] {
			t.Fatalf("acknowledged message %s never arrived", p)
		}
	}
	t.Logf("%d publishes, %d acknowledged as forwarded to B, all delivered", sent, len(acked))
}
