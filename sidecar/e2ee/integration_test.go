package e2ee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

var _ sidecar.PeerCrypter = (*Manager)(nil)
var _ sidecar.SubscriptionSink = (*Manager)(nil)

// recorder is a TCP proxy that records every byte between two sidecars.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	buf    bytes.Buffer
	wg     sync.WaitGroup
	conns  []net.Conn
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(u, c)
		go r.pipe(c, u)
	}
}

func (r *recorder) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 {
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if _, werr := dst.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			_ = dst.Close()
			return
		}
	}
}

func (r *recorder) close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type meshNode struct {
	id   string
	node *sidecar.Node
	mgr  *Manager
}

// startMesh starts sidecars with Managers. Node 0 dials every other node
// through a recorder; the others' links to each other are direct. Every
// node routes topic to every other node.
func startMesh(t *testing.T, ca *identity.CA, ids []string, cas map[string]*identity.CA, mod func(id string, c *Config)) ([]*meshNode, []*recorder) {
	t.Helper()
	ros := newRoster()
	ros.set(topic, ids...)
	var out []*meshNode
	var recs []*recorder
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		nca := ca
		if cas[id] != nil {
			nca = cas[id]
		}
		src, err := nca.MemorySource(identity.MustParseID("spiffe://example.org/ns/agents/sa/"+id), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		cfg := DefaultConfig()
		cfg.RetryInterval, cfg.EpochWait, cfg.JoinTimeout = 20*time.Millisecond, 2*time.Second, 5*time.Second
		if mod != nil {
			mod(id, &cfg)
		}
		opts := []Option{WithRoster(ros)}
		nopts := []sidecar.Option{}
		if os.Getenv("E2EE_TEST_LOG") != "" {
			l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			opts = append(opts, WithLogger(l))
			nopts = append(nopts, sidecar.WithLogger(l))
		}
		mgr, err := New(cfg, id, src, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		sc := sidecartest.Config(id)
		for _, o := range out { // nodes started already (higher index)
			addr := o.node.PeerAddr().String()
			if i == 0 {
				rec := newRecorder(t, addr)
				recs = append(recs, rec)
				addr = rec.ln.Addr().String()
			}
			sc.StaticPeers = append(sc.StaticPeers, o.id+"="+addr)
		}
		for _, o := range ids {
			if o != id {
				sc.StaticRoutes = append(sc.StaticRoutes, topic+"="+o)
			}
		}
		n := sidecartest.Start(t, sc, append(nopts, sidecar.WithPeerCrypter(mgr), sidecar.WithSubscriptionSink(mgr))...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = mgr.Run(ctx) }()
		t.Cleanup(func() { cancel(); _ = mgr.Close(); <-done })
		n.HandleAdmin("GET /debug/groups", mgr.DebugHandler())
		out = append([]*meshNode{{id: id, node: n, mgr: mgr}}, out...)
	}
	// Wait for every link.
	eventually(t, "peer links up", func() bool {
		for _, a := range out {
			up := 0
			for _, ci := range a.node.Connections() {
				if ci.Kind == sidecar.KindPeer && ci.Status == sidecar.StatusUp {
					up++
				}
			}
			if up < len(out)-1 {
				return false
			}
		}
		return true
	})
	return out, recs
}

func TestIntegrationNoPlaintextBetweenSidecars(t *testing.T) {
	ca, _ := identity.NewCA("example.org")
	mesh, recs := startMesh(t, ca, []string{"a", "b", "c"}, nil, nil)
	ctx := ctxT(t)
	agents := make([]*sidecartest.Agent, len(mesh))
	for i, m := range mesh {
		agents[i] = sidecartest.DialAgent(t, m.node)
	}
	for _, ag := range agents[1:] {
		if err := ag.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, []string{"b", "c"}, mesh[1].mgr, mesh[2].mgr)
	var secrets [][]byte
	for i := 0; i < 5; i++ {
		secret := []byte(fmt.Sprintf("TOP-SECRET-PAYLOAD-%d-xyzzy", i))
		secrets = append(secrets, secret)
		ack, err := agents[0].Publish(ctx, &agpv1.Message{
			Header:  &agpv1.Header{Destination: topic, Metadata: map[string]string{"note": "METADATA-SECRET"}, ContentType: "text/secret-type"},
			Payload: secret,
		})
		if err != nil {
			t.Fatal(err)
		}
		if ack.RemoteDeliveries != 2 {
			t.Fatalf("remote deliveries %d", ack.RemoteDeliveries)
		}
		for j, ag := range agents[1:] {
			nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := ag.Next(nctx)
			cancel()
			if err != nil {
				for _, mn := range mesh {
					t.Logf("%s: groups %+v security %v", mn.id, mn.mgr.Groups(), dumpEvents(mn.mgr))
				}
				t.Fatalf("message %d to agent %d: %v", i, j+1, err)
			}
			if !bytes.Equal(m.Payload, secret) || m.Header.Metadata["note"] != "METADATA-SECRET" || m.Header.ContentType != "text/secret-type" {
				t.Fatalf("delivered %v", m)
			}
		}
	}
	// Anycast: a session with one node.
	ack, err := agents[0].Publish(ctx, &agpv1.Message{Header: &agpv1.Header{Destination: topic, Fanout: 1}, Payload: []byte("ANYCAST-SECRET-abc")})
	if err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("anycast %v %v", ack, err)
	}
	secrets = append(secrets, []byte("ANYCAST-SECRET-abc"), []byte("METADATA-SECRET"), []byte("text/secret-type"))
	var got []byte
	for _, r := range recs {
		got = append(got, r.bytes()...)
	}
	if !bytes.Contains(got, []byte(sidecar.SealedContentType)) || !bytes.Contains(got, []byte(topic)) {
		t.Fatal("the recorder saw no sealed message: the test proves nothing")
	}
	for _, s := range secrets {
		if bytes.Contains(got, s) {
			t.Fatalf("plaintext %q between sidecars", s)
		}
	}
}

func TestIntegrationForeignCANotAdmitted(t *testing.T) {
	ca, _ := identity.NewCA("example.org")
	other, _ := identity.NewCA("example.org")
	mesh, _ := startMesh(t, ca, []string{"a", "b", "c"}, map[string]*identity.CA{"c": other}, func(id string, c *Config) {
		if id == "c" {
			c.JoinTimeout = 300 * time.Millisecond
		}
	})
	ctx := ctxT(t)
	pub := sidecartest.DialAgent(t, mesh[0].node)
	good := sidecartest.DialAgent(t, mesh[1].node)
	evil := sidecartest.DialAgent(t, mesh[2].node)
	for _, ag := range []*sidecartest.Agent{good, evil} {
		if err := ag.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "credential refused", func() bool { return events(mesh[1].mgr, EventCredential) > 0 })
	if _, err := pub.PublishTo(ctx, topic, 0, []byte("for members only")); err != nil {
		t.Fatal(err)
	}
	if m, err := good.Next(ctx); err != nil || string(m.Payload) != "for members only" {
		t.Fatalf("member: %v %v", m, err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := evil.Next(short); err == nil {
		t.Fatalf("foreign sidecar's agent got %q", m.Payload)
	}
	if g, ok := groupOf(mesh[0].mgr, topic); !ok || contains(mesh[0].mgr, topic, "c") {
		t.Fatalf("c admitted: %+v", g)
	}
}
