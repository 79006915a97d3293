package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newCA(t testing.TB, td string) *CA {
	t.Helper()
	ca, err := NewCA(td)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *CA, id string, lifetime time.Duration) *SVID {
	t.Helper()
	s, err := ca.Issue(MustParseID(id), lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func issueOpts(t testing.TB, ca *CA, id string, o IssueOptions) *SVID {
	t.Helper()
	s, err := ca.IssueWithOptions(MustParseID(id), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func memSource(t testing.TB, ca *CA, id string, opts ...Option) *Source {
	t.Helper()
	s, err := NewMemorySource(issue(t, ca, id, time.Hour), ca.Bundle(), nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileSource writes an SVID of ca to a new directory and opens a Source on it.
func fileSource(t testing.TB, ca *CA, id string, mod func(*Config), opts ...Option) (*Source, string) {
	t.Helper()
	dir := t.TempDir()
	if err := ca.WriteFiles(dir, issue(t, ca, id, time.Hour)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir = dir
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSource(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// tlsServer accepts TLS connections on 127.0.0.1:0, completes each
// handshake, reports the result and writes one byte on success.
type tlsServer struct {
	addr    string
	results chan serverResult
}

type serverResult struct {
	id  ID
	err error
}

func startTLSServer(t testing.TB, cfg *tls.Config) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{addr: ln.Addr().String(), results: make(chan serverResult, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				var id ID
				if err == nil {
					id, err = PeerIDFromConnectionState(tc.ConnectionState())
				}
				if err == nil {
					_, err = tc.Write([]byte{1})
				}
				s.results <- serverResult{id: id, err: err}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// next returns the server's result of the next handshake.
func (s *tlsServer) next(t testing.TB) serverResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no server handshake result")
		return serverResult{}
	}
}

// dial connects, handshakes and reads the server's byte, so a refusal on
// either side surfaces as an error.
func dial(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return tc.ConnectionState(), err
	}
	return tc.ConnectionState(), nil
}

// plainClient presents svid without verifying the server (a bad peer).
func plainClient(svid *SVID) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{svid.TLSCertificate()}, InsecureSkipVerify: true}
}

// counterValue reads a counter (with an optional reason label) from reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := reason == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					match = true
				}
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantErr(t testing.TB, err error, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v; want %v", err, target)
	}
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := WriteFileAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testContext(t testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}
