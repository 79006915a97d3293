package test

// MLS between sidecar processes that learn their routes only from a control
// plane process: lease withdrawal, committer hand-over, a recording relay
// and a sidecar of another CA. Short lease grace and MLS timers come from
// flags and AGW_MLS_* variables.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar/e2ee"
)

// mlsGrace is the control plane's lease grace period in these tests.
const mlsGrace = time.Second

// mlsCluster is a control plane process and the sidecar processes started
// against it, with identities of one test CA.
type mlsCluster struct {
	t       *testing.T
	cp      string
	cpAdmin string
	ca      *testCA
}

func newMLSCluster(t *testing.T) *mlsCluster { return newMLSClusterGrace(t, mlsGrace) }

func newMLSClusterGrace(t *testing.T, grace time.Duration) *mlsCluster {
	t.Helper()
	c := &mlsCluster{t: t, cp: freePort(t), cpAdmin: freePort(t), ca: newTestCA(t, "mls.test")}
	startAgw(t, nil, "control-plane", "--listen", c.cp, "--admin-listen", c.cpAdmin, "--warmup", "0s",
		"--grace-period", grace.String(), "--log-format", "text")
	waitOK(t, "http://"+c.cpAdmin+"/readyz")
	return c
}

// mlsSidecar is one sidecar process.
type mlsSidecar struct {
	name, agent, peer, admin string
	p                        *proc
}

// sidecarOpts adjusts how a sidecar starts.
type sidecarOpts struct {
	identityEnv string // default: an SVID of the cluster's CA
	peer        string // peer listen address; default: a free port
	agent       string // agent listen address; default: a free port
	admin       string // admin listen address; default: a free port
	advertise   string // default: the peer listen address
	env         []string
}

func (c *mlsCluster) start(name string, o sidecarOpts) *mlsSidecar {
	t := c.t
	t.Helper()
	if o.peer == "" {
		o.peer = freePort(t)
	}
	if o.agent == "" {
		o.agent = freePort(t)
	}
	if o.admin == "" {
		o.admin = freePort(t)
	}
	s := &mlsSidecar{name: name, agent: o.agent, peer: o.peer, admin: o.admin}
	if o.identityEnv == "" {
		o.identityEnv = c.ca.identityEnv(t, name)
	}
	if o.advertise == "" {
		o.advertise = s.peer
	}
	env := []string{
		"AGW_XDS_SERVER=" + c.cp, o.identityEnv,
		"AGW_MLS_JOIN_TIMEOUT=3s", "AGW_MLS_RETRY_INTERVAL=200ms", "AGW_MLS_EPOCH_WAIT=1s",
		"AGW_MLS_LEAVE_GRACE=1s", "AGW_RECONNECT_MAX=500ms", "AGW_XDS_BACKOFF_INITIAL=50ms",
	}
	env = append(env, o.env...) // (the last value of a variable wins)
	s.p = startAgw(t, env, "sidecar", "--node-id", name, "--agent-listen", s.agent,
		"--peer-listen", s.peer, "--admin-listen", s.admin, "--advertise-address", o.advertise,
		"--shutdown-timeout", "2s", "--log-format", "text")
	waitOK(t, "http://"+s.admin+"/readyz")
	return s
}

// kill ends the sidecar with SIGKILL: no goodbye to peers, the control
// plane's lease ends with the broken stream.
func (s *mlsSidecar) kill(t *testing.T) {
	t.Helper()
	if err := s.p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

var debugClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// groups reads the sidecar's /debug/groups.
func (s *mlsSidecar) groups() ([]e2ee.GroupInfo, error) {
	resp, err := debugClient.Get("http://" + s.admin + "/debug/groups")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/debug/groups: %s", resp.Status)
	}
	var dump struct {
		NodeID string           `json:"node_id"`
		Groups []e2ee.GroupInfo `json:"groups"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return nil, err
	}
	if dump.NodeID != s.name {
		return nil, fmt.Errorf("/debug/groups of %s names node %q", s.name, dump.NodeID)
	}
	return dump.Groups, nil
}

// channel returns the sidecar's channel group of topic.
func (s *mlsSidecar) channel(topic string) (e2ee.GroupInfo, bool, error) {
	gs, err := s.groups()
	if err != nil {
		return e2ee.GroupInfo{}, false, err
	}
	for _, g := range gs {
		if g.Kind == "channel" && g.Name == topic {
			return g, true, nil
		}
	}
	return e2ee.GroupInfo{}, false, nil
}

func members(g e2ee.GroupInfo) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.NodeID)
	}
	slices.Sort(out)
	return out
}

// waitChannel polls until every sidecar in ss reports the channel of topic
// with exactly the members want, the same group id and epoch (no fork), an
// epoch of at least minEpoch and, if committer is set, that committer.
func waitChannel(t *testing.T, topic string, want []string, committer string, minEpoch uint64, ss ...*mlsSidecar) e2ee.GroupInfo {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.Now().Add(20 * time.Second)
	var last []string
	for {
		last = last[:0]
		var first e2ee.GroupInfo
		ok := true
		for i, s := range ss {
			g, found, err := s.channel(topic)
			switch {
			case err != nil:
				last = append(last, fmt.Sprintf("%s: %v", s.name, err))
				ok = false
				continue
			case !found:
				last = append(last, s.name+": no channel")
				ok = false
				continue
			}
			last = append(last, fmt.Sprintf("%s: group %.12s epoch %d committer %s members %v", s.name, g.GroupID, g.Epoch, g.Committer, members(g)))
			if i == 0 {
				first = g
			}
			if !slices.Equal(members(g), want) || g.Epoch < minEpoch || (committer != "" && g.Committer != committer) ||
				g.GroupID != first.GroupID || g.Epoch != first.Epoch || g.Committer != first.Committer {
				ok = false
			}
		}
		if ok {
			return first
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s never reached members %v (committer %q, epoch >= %d) on all of them:\n%s",
				topic, want, committer, minEpoch, strings.Join(last, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mlsAgent is an agent of a sidecar: it records every payload delivered.
type mlsAgent struct {
	name string
	c    *client.Client
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func dialAgent(t *testing.T, s *mlsSidecar, topics ...string) *mlsAgent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.agent)
	if err != nil {
		t.Fatal(err)
	}
	a := &mlsAgent{name: s.name, c: c, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for m := range c.Deliveries() {
			a.mu.Lock()
			a.got = append(a.got, string(m.GetPayload()))
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-a.done })
	for _, tp := range topics {
		if err := c.Subscribe(ctx, tp); err != nil {
			t.Fatalf("%s subscribes to %s: %v", s.name, tp, err)
		}
	}
	return a
}

// received returns the payloads delivered so far that start with prefix.
func (a *mlsAgent) received(prefix string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.got {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func (a *mlsAgent) publish(ctx context.Context, topic, payload string, fanout uint32, meta map[string]string) error {
	_, err := a.c.Publish(ctx, &agpv1.Message{
		Header:  &agpv1.Header{Source: "acme/mls/" + a.name + "/1", Destination: topic, Fanout: fanout, Metadata: meta},
		Payload: []byte(payload),
	})
	return err
}

// publishUntil publishes prefix-1, prefix-2, ... to topic from a until every
// agent in to has received one of them, and returns how many it sent.
func publishUntil(t *testing.T, from *mlsAgent, topic, prefix string, to ...*mlsAgent) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	for i := 1; ; i++ {
		if err := from.publish(ctx, topic, fmt.Sprintf("%s-%d", prefix, i), 0, nil); err != nil && ctx.Err() == nil {
			t.Logf("%s publishes %s-%d: %v", from.name, prefix, i, err)
		}
		wait := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(wait) {
			all := true
			for _, a := range to {
				if len(a.received(prefix+"-")) == 0 {
					all = false
				}
			}
			if all {
				return i
			}
			time.Sleep(10 * time.Millisecond)
		}
		if ctx.Err() != nil {
			var missing []string
			for _, a := range to {
				if len(a.received(prefix+"-")) == 0 {
					missing = append(missing, a.name)
				}
			}
			t.Fatalf("%d messages %s-* from %s never reached %v", i, prefix, from.name, missing)
		}
	}
}

// TestMLSLeaseWithdrawalRemovesMember: a subscriber's sidecar is killed;
// once the control plane withdraws its lease (after the grace period) the
// channel's committer removes it with a commit, and the others go on.
func TestMLSLeaseWithdrawalRemovesMember(t *testing.T) {
	const topic = "acme/mls/lease"
	c := newMLSCluster(t)
	a, b, x := c.start("lw-a", sidecarOpts{}), c.start("lw-b", sidecarOpts{}), c.start("lw-c", sidecarOpts{})
	agA, agB, agX := dialAgent(t, a, topic), dialAgent(t, b, topic), dialAgent(t, x, topic)
	publishUntil(t, agA, topic, "hello", agB, agX)
	g0 := waitChannel(t, topic, []string{"lw-a", "lw-b", "lw-c"}, "lw-a", 1, a, b, x)

	x.kill(t)
	killed := time.Now()
	g1 := waitChannel(t, topic, []string{"lw-a", "lw-b"}, "lw-a", g0.Epoch+1, a, b)
	took := time.Since(killed)
	if g1.GroupID != g0.GroupID {
		t.Fatalf("the channel was replaced (group %s -> %s), want the killed member removed by a commit", g0.GroupID, g1.GroupID)
	}
	// Removal follows the lease: not before the grace period (a little
	// slack for when the control plane saw the stream end).
	if took < mlsGrace-200*time.Millisecond {
		t.Fatalf("member removed %v after the kill, before the %v grace period", took, mlsGrace)
	}
	t.Logf("lw-c removed %v after SIGKILL (grace %v), epoch %d -> %d", took.Round(time.Millisecond), mlsGrace, g0.Epoch, g1.Epoch)
	publishUntil(t, agA, topic, "after-a", agB)
	publishUntil(t, agB, topic, "after-b", agA)
}

// TestMLSCommitterDeathHandsOver: the channel's committer (the lowest node
// id) is killed; the next lowest member takes over, removes it, admits a
// new subscriber afterwards, and every survivor agrees on one group.
func TestMLSCommitterDeathHandsOver(t *testing.T) {
	const topic = "acme/mls/handover"
	c := newMLSCluster(t)
	a, b, x := c.start("cd-a", sidecarOpts{}), c.start("cd-b", sidecarOpts{}), c.start("cd-c", sidecarOpts{})
	agA, agB, agC := dialAgent(t, a, topic), dialAgent(t, b, topic), dialAgent(t, x, topic)
	publishUntil(t, agA, topic, "from-a", agB, agC)
	publishUntil(t, agB, topic, "from-b", agA, agC)
	g0 := waitChannel(t, topic, []string{"cd-a", "cd-b", "cd-c"}, "cd-a", 1, a, b, x)

	a.kill(t)
	g1 := waitChannel(t, topic, []string{"cd-b", "cd-c"}, "cd-b", g0.Epoch+1, b, x)
	if g1.GroupID != g0.GroupID {
		t.Fatalf("the channel forked or was replaced (group %s -> %s)", g0.GroupID, g1.GroupID)
	}
	publishUntil(t, agB, topic, "handed-over", agC)

	d := c.start("cd-d", sidecarOpts{})
	agD := dialAgent(t, d, topic)
	publishUntil(t, agB, topic, "with-d", agC, agD)
	g2 := waitChannel(t, topic, []string{"cd-b", "cd-c", "cd-d"}, "cd-b", g1.Epoch+1, b, x, d)
	if g2.GroupID != g0.GroupID {
		t.Fatalf("the channel forked or was replaced when cd-d joined (group %s -> %s)", g0.GroupID, g2.GroupID)
	}
	publishUntil(t, agD, topic, "from-d", agB, agC)
	t.Logf("epochs: %d (3 members) -> %d (committer cd-b) -> %d (cd-d admitted)", g0.Epoch, g1.Epoch, g2.Epoch)
}

// recordingRelay sits between two sidecars as a trusted member of the mesh
// would: it terminates the peer link's mutual TLS with a certificate of the
// mesh's CA, opens its own to the real peer, copies the decrypted stream
// (HTTP/2 frames of gRPC messages) both ways and records every byte.
type recordingRelay struct {
	ln     net.Listener
	target string
	server *tls.Config
	client *tls.Config
	mu     sync.Mutex
	rec    bytes.Buffer
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, src *identity.Source, target string) *recordingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingRelay{ln: ln, target: target, server: src.ServerTLSConfig(), client: src.ClientTLSConfig()}
	r.server.NextProtos = []string{"h2"}
	r.client.NextProtos = []string{"h2"}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *recordingRelay) addr() string { return r.ln.Addr().String() }

func (r *recordingRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns = append(r.conns, c)
	return true
}

func (r *recordingRelay) close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *recordingRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.relay(c)
		}()
	}
}

func (r *recordingRelay) relay(raw net.Conn) {
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in := tls.Server(raw, r.server)
	if err := in.HandshakeContext(ctx); err != nil {
		return
	}
	d := tls.Dialer{Config: r.client}
	outc, err := d.DialContext(ctx, "tcp", r.target)
	if err != nil {
		return
	}
	if !r.track(outc) {
		return
	}
	defer outc.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(io.MultiWriter(dst, r), src)
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go cp(outc, in)
	go cp(in, outc)
	<-done
	<-done
}

// Write records relayed bytes.
func (r *recordingRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Write(p)
}

func (r *recordingRelay) recorded() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.rec.Bytes())
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestMLSRecordingRelayFindsNoPlaintext: every peer link between two
// sidecars runs through a relay that holds a certificate of the mesh's CA
// and so reads the links' decrypted TLS streams. It sees the routing
// headers (the topic) but no payload or metadata of any message, multicast
// or anycast, in either direction.
func TestMLSRecordingRelayFindsNoPlaintext(t *testing.T) {
	const topic = "acme/mls/relayed"
	c := newMLSCluster(t)
	relayID, err := identity.NewWorkloadID(c.ca.td, "test", "relay")
	if err != nil {
		t.Fatal(err)
	}
	relaySrc, err := c.ca.MemorySource(relayID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relaySrc.Close() })
	// Each sidecar advertises its relay's address: whoever dials whom, the
	// link crosses a relay.
	peerA, peerB := freePort(t), freePort(t)
	relayA, relayB := startRelay(t, relaySrc, peerA), startRelay(t, relaySrc, peerB)
	a := c.start("rl-a", sidecarOpts{peer: peerA, advertise: relayA.addr()})
	b := c.start("rl-b", sidecarOpts{peer: peerB, advertise: relayB.addr()})
	// topic: both subscribe (multicast: the channel); onlyA, onlyB: one
	// subscriber each (anycast from the other: the point-to-point session).
	const onlyA, onlyB = topic + "-a", topic + "-b"
	agA, agB := dialAgent(t, a, topic, onlyA), dialAgent(t, b, topic, onlyB)

	var secrets []string
	secret := func(kind string) string {
		s := kind + "secret-" + randomHex(t)
		secrets = append(secrets, s)
		return s
	}
	publishUntil(t, agA, topic, "warm-up", agB)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// send publishes secrets from one agent to another until one arrives.
	send := func(from, to *mlsAgent, dest string, fanout uint32) {
		t.Helper()
		kind := fmt.Sprintf("%s-fanout%d-%s-", dest, fanout, from.name)
		for len(to.received(kind)) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("%s never received a message %s*", to.name, kind)
			}
			payload := secret(kind)
			meta := map[string]string{"note": secret("metadata")}
			if err := from.publish(ctx, dest, payload, fanout, meta); err != nil {
				t.Fatal(err)
			}
			for wait := time.Now().Add(300 * time.Millisecond); len(to.received(kind)) == 0 && time.Now().Before(wait); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	for range 3 {
		send(agA, agB, topic, 0) // multicast: the channel
		send(agB, agA, topic, 0)
		send(agA, agB, onlyB, 1) // anycast: the point-to-point session
		send(agB, agA, onlyA, 1)
	}
	if gs, err := a.groups(); err != nil {
		t.Fatal(err)
	} else if !slices.ContainsFunc(gs, func(g e2ee.GroupInfo) bool { return g.Kind == "p2p" && g.Name == "rl-b" }) {
		t.Fatalf("rl-a has no point-to-point session with rl-b: %+v", gs)
	}
	rec := append(relayA.recorded(), relayB.recorded()...)
	// The relay did see the decrypted links: the routing header travels
	// outside the ciphertext, with the MLS content type.
	for _, visible := range []string{topic, "application/agp-mls"} {
		if !bytes.Contains(rec, []byte(visible)) {
			t.Fatalf("the relays (%d bytes) never saw %q: they did not read the peer links", len(rec), visible)
		}
	}
	for _, s := range secrets {
		if bytes.Contains(rec, []byte(s)) {
			t.Fatalf("the relays saw plaintext %q", s)
		}
	}
	t.Logf("%d bytes relayed, %d secrets, none visible", len(rec), len(secrets))
}

// TestMLSForeignCANeverAdmitted: a sidecar whose certificate comes from
// another CA (it trusts both CAs, the others only theirs) subscribes and
// publishes to the channel; it never becomes a member of any group of the
// others, nothing it publishes reaches their agents and nothing of theirs
// reaches its agent, while the others go on.
func TestMLSForeignCANeverAdmitted(t *testing.T) {
	const topic = "acme/mls/foreign"
	c := newMLSCluster(t)
	other := newTestCA(t, c.ca.td) // same trust domain, another key
	// The intruder's node id is the lowest: admitted, it would commit.
	xid, err := identity.NewWorkloadID(c.ca.td, "test", "fc-0x")
	if err != nil {
		t.Fatal(err)
	}
	svid, err := other.Issue(xid, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	both, err := identity.NewBundle(c.ca.Certificate(), other.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := identity.WriteSVIDFiles(dir, svid, both); err != nil {
		t.Fatal(err)
	}
	// The others wait JoinTimeout once for the intruder (routed to them by
	// the control plane) to join before sealing without it: keep it short.
	short := []string{"AGW_MLS_JOIN_TIMEOUT=1s"}
	a, b := c.start("fc-a", sidecarOpts{env: short}), c.start("fc-b", sidecarOpts{env: short})
	x := c.start("fc-0x", sidecarOpts{identityEnv: "AGW_IDENTITY_DIR=" + dir, env: short})
	agA, agB, agX := dialAgent(t, a, topic), dialAgent(t, b, topic), dialAgent(t, x, topic)
	agX2 := dialAgent(t, x, topic) // a second agent beside the intruder: its sidecar works

	publishUntil(t, agA, topic, "legit", agB)
	g := waitChannel(t, topic, []string{"fc-a", "fc-b"}, "fc-a", 1, a, b)
	// The intruder keeps trying for a while, as do the others.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 10 {
		if err := agX.publish(ctx, topic, fmt.Sprintf("foreign-%d", i), 0, nil); err != nil {
			t.Fatal(err)
		}
		_ = agA.publish(ctx, topic, fmt.Sprintf("legit-late-%d", i), 0, nil)
		time.Sleep(200 * time.Millisecond)
	}
	publishUntil(t, agB, topic, "legit-b", agA)
	for _, ag := range []*mlsAgent{agA, agB} {
		if got := ag.received("foreign-"); len(got) > 0 {
			t.Fatalf("%s's agent received the foreign sidecar's %v", ag.name, got)
		}
	}
	for _, ag := range []*mlsAgent{agX, agX2} {
		if got := ag.received("legit"); len(got) > 0 {
			t.Fatalf("an agent of the foreign sidecar received %v", got)
		}
	}
	if len(agX2.received("foreign-")) == 0 {
		t.Fatal("the foreign sidecar's second agent got none of its messages: the sidecar was not working")
	}
	if os.Getenv("MLS_CP_TEST_LOGS") != "" {
		t.Logf("fc-a:\n%s\nfc-0x:\n%s", a.p.out.String(), x.p.out.String())
	}
	for _, s := range []*mlsSidecar{a, b} {
		gs, err := s.groups()
		if err != nil {
			t.Fatal(err)
		}
		for _, gi := range gs {
			for _, m := range gi.Members {
				if m.NodeID == "fc-0x" || m.Identity == xid.String() {
					t.Fatalf("%s's %s group %s has the foreign sidecar as a member", s.name, gi.Kind, gi.Name)
				}
			}
		}
	}
	if xg, ok, err := x.channel(topic); err != nil {
		t.Fatal(err)
	} else if ok && !slices.Equal(members(xg), []string{"fc-0x"}) {
		t.Fatalf("the foreign sidecar's channel has members %v", members(xg))
	}
	g1 := waitChannel(t, topic, []string{"fc-a", "fc-b"}, "fc-a", g.Epoch, a, b)
	if g1.GroupID != g.GroupID {
		t.Fatalf("the channel was replaced while the foreign sidecar tried (%s -> %s)", g.GroupID, g1.GroupID)
	}
}

// TestMLSSubscriberSuccessor: the committer dies and its successor (the
// next lowest id) only subscribes: it never published, so it learns the
// topic's routes and the committer's withdrawal through its roster alone,
// and its commit must reach a member it has no data link with.
func TestMLSSubscriberSuccessor(t *testing.T) {
	const topic = "acme/mls/successor"
	c := newMLSCluster(t)
	a, b, x, z := c.start("ss-a", sidecarOpts{}), c.start("ss-b", sidecarOpts{}), c.start("ss-c", sidecarOpts{}), c.start("ss-z", sidecarOpts{})
	agA, agB, agC := dialAgent(t, a, topic), dialAgent(t, b, topic), dialAgent(t, x, topic)
	agZ := dialAgent(t, z) // publishes only
	publishUntil(t, agA, topic, "from-a", agB, agC)
	publishUntil(t, agZ, topic, "from-z", agA, agB, agC)
	g0 := waitChannel(t, topic, []string{"ss-a", "ss-b", "ss-c", "ss-z"}, "ss-a", 1, a, b, x, z)

	a.kill(t)
	g1 := waitChannel(t, topic, []string{"ss-b", "ss-c", "ss-z"}, "ss-b", g0.Epoch+1, b, x, z)
	if g1.GroupID != g0.GroupID {
		t.Fatalf("the channel forked or was replaced (group %s -> %s)", g0.GroupID, g1.GroupID)
	}
	publishUntil(t, agZ, topic, "after", agB, agC)
}

// metric reads one unlabelled metric from the sidecar's /metrics.
func (s *mlsSidecar) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := debugClient.Get("http://" + s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		var v float64
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("%s has no metric %s", s.name, name)
	return 0
}

// TestMLSRestartWithStateResumes: a subscriber's sidecar is killed and
// started again with its state directory within the lease's grace period:
// it stays a member (the committer does not remove it), resumes the same
// group from its saved state without a Welcome, moves to a fresh epoch and
// receives again.
func TestMLSRestartWithStateResumes(t *testing.T) {
	const topic = "acme/mls/restart"
	c := newMLSClusterGrace(t, 4*time.Second)
	state := []string{"AGW_MLS_STATE_DIR=" + t.TempDir(), "AGW_MLS_STATE_KEY=" + strings.Repeat("5a", 32)}
	idB := c.ca.identityEnv(t, "rs-b") // the same identity after the restart
	a := c.start("rs-a", sidecarOpts{})
	b := c.start("rs-b", sidecarOpts{identityEnv: idB, env: state})
	agA, agB := dialAgent(t, a, topic), dialAgent(t, b, topic)
	publishUntil(t, agA, topic, "before", agB)
	g0 := waitChannel(t, topic, []string{"rs-a", "rs-b"}, "rs-a", 1, a, b)

	b.kill(t)
	agB.c.Close()
	b2 := c.start("rs-b", sidecarOpts{identityEnv: idB, env: state, peer: b.peer, agent: b.agent, admin: b.admin})
	agB2 := dialAgent(t, b2, topic)
	if g, ok, err := b2.channel(topic); err != nil || !ok || g.GroupID != g0.GroupID {
		t.Fatalf("after the restart rs-b holds %+v (found %v, err %v), want group %s restored", g, ok, err, g0.GroupID)
	}
	publishUntil(t, agA, topic, "after", agB2)
	g1 := waitChannel(t, topic, []string{"rs-a", "rs-b"}, "rs-a", g0.Epoch+1, a, b2)
	if g1.GroupID != g0.GroupID {
		t.Fatalf("group %s replaced by %s: rs-b rejoined", g0.GroupID, g1.GroupID)
	}
	if w, r := b2.metric(t, "agw_mls_welcomes_total"), b2.metric(t, "agw_mls_rejoins_total"); w != 0 || r != 0 {
		t.Fatalf("restarted rs-b: %v welcomes, %v rejoins; want it resumed from its state", w, r)
	}
	t.Logf("resumed group %.12s: epoch %d before the restart, %d after", g0.GroupID, g0.Epoch, g1.Epoch)
}
