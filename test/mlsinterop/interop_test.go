package mlsinterop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
)

// suites are the cipher suites every scenario runs with.
var suites = []suite.ID{1, 2, 3}

const exportLabel = "agw interop"

// startDriver starts driver.mjs for one test; a missing node or ts-mls
// fails the test (never skips) and says how to install them.
func startDriver(t *testing.T) *Driver {
	t.Helper()
	nodePath, err := FindDeps(".")
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	d, err := Start(ctx, nodePath, ".")
	if err != nil {
		cancel()
		t.Fatalf("start driver: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close driver: %v", err)
		}
		cancel()
	})
	return d
}

// call runs a driver command with a per-command timeout.
func call(t *testing.T, d *Driver, op string, args map[string]any) *Reply {
	t.Helper()
	r, err := tryCall(d, op, args)
	if err != nil {
		t.Fatalf("ts-mls %v", err)
	}
	return r
}

func tryCall(d *Driver, op string, args map[string]any) (*Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return d.Call(ctx, op, args)
}

// member is one group member of either implementation.
type member interface {
	Name() string
	Epoch(t *testing.T) uint64
	EpochAuthenticator(t *testing.T) []byte
	Export(t *testing.T, label string, context []byte, n int) []byte
	Encrypt(t *testing.T, data []byte) []byte
	// Process handles a handshake or application message; kind is
	// "application", "proposal" or "commit".
	Process(msg []byte) (kind string, data []byte, err error)
}

type goMember struct {
	name string
	g    *mls.Group
}

func (m *goMember) Name() string                         { return m.name + " (Go)" }
func (m *goMember) Epoch(*testing.T) uint64              { return m.g.Epoch() }
func (m *goMember) EpochAuthenticator(*testing.T) []byte { return m.g.EpochAuthenticator() }
func (m *goMember) Export(t *testing.T, label string, context []byte, n int) []byte {
	t.Helper()
	out, err := m.g.Export(label, context, n)
	if err != nil {
		t.Fatalf("%s: export: %v", m.Name(), err)
	}
	return out
}
func (m *goMember) Encrypt(t *testing.T, data []byte) []byte {
	t.Helper()
	out, err := m.g.Encrypt(data)
	if err != nil {
		t.Fatalf("%s: encrypt: %v", m.Name(), err)
	}
	return out
}
func (m *goMember) Process(msg []byte) (string, []byte, error) {
	p, err := m.g.ProcessMessage(msg)
	if err != nil {
		return "", nil, err
	}
	switch p.Kind {
	case mls.KindApplication:
		return "application", p.Application, nil
	case mls.KindProposal:
		return "proposal", nil, nil
	case mls.KindCommit:
		return "commit", nil, nil
	}
	return "", nil, fmt.Errorf("unknown kind %v", p.Kind)
}

// merge installs the Go member's own pending commit.
func (m *goMember) merge(t *testing.T) func(*mls.CommitResult, error) *mls.CommitResult {
	t.Helper()
	return func(res *mls.CommitResult, err error) *mls.CommitResult {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: commit: %v", m.Name(), err)
		}
		if _, err := m.g.MergePendingCommit(); err != nil {
			t.Fatalf("%s: merge commit: %v", m.Name(), err)
		}
		return res
	}
}

type tsMember struct {
	name string
	d    *Driver
}

func (m *tsMember) Name() string { return m.name + " (ts-mls)" }
func (m *tsMember) Epoch(t *testing.T) uint64 {
	t.Helper()
	return call(t, m.d, "state", map[string]any{"name": m.name}).Epoch
}
func (m *tsMember) EpochAuthenticator(t *testing.T) []byte {
	t.Helper()
	return call(t, m.d, "state", map[string]any{"name": m.name}).EpochAuthenticator
}
func (m *tsMember) Export(t *testing.T, label string, context []byte, n int) []byte {
	t.Helper()
	return call(t, m.d, "export", map[string]any{"name": m.name, "label": label, "context": context, "length": n}).Secret
}
func (m *tsMember) Encrypt(t *testing.T, data []byte) []byte {
	t.Helper()
	return call(t, m.d, "encrypt", map[string]any{"name": m.name, "data": data}).Message
}
func (m *tsMember) Process(msg []byte) (string, []byte, error) {
	r, err := tryCall(m.d, "process", map[string]any{"name": m.name, "message": msg})
	if err != nil {
		return "", nil, err
	}
	return r.Kind, r.Data, nil
}

// deliver hands a message to each receiver and checks the kind of content
// each one saw.
func deliver(t *testing.T, msg []byte, want string, to ...member) {
	t.Helper()
	for _, m := range to {
		kind, _, err := m.Process(msg)
		if err != nil {
			t.Fatalf("%s: process %s: %v", m.Name(), want, err)
		}
		if kind != want {
			t.Fatalf("%s: processed a %s, want %s", m.Name(), kind, want)
		}
	}
}

// checkAgree asserts that all members are in the same epoch and agree on
// the epoch authenticator and an exporter output.
func checkAgree(t *testing.T, wantEpoch uint64, ms ...member) {
	t.Helper()
	ctx := binary.BigEndian.AppendUint64([]byte("epoch "), wantEpoch)
	var auth, exp []byte
	for i, m := range ms {
		if e := m.Epoch(t); e != wantEpoch {
			t.Fatalf("%s: epoch %d, want %d", m.Name(), e, wantEpoch)
		}
		a := m.EpochAuthenticator(t)
		x := m.Export(t, exportLabel, ctx, 32)
		if len(a) == 0 || len(x) != 32 {
			t.Fatalf("%s: epoch authenticator %d bytes, exporter %d bytes", m.Name(), len(a), len(x))
		}
		if i == 0 {
			auth, exp = a, x
			continue
		}
		if !bytes.Equal(a, auth) {
			t.Fatalf("epoch %d: %s and %s disagree on the epoch authenticator", wantEpoch, ms[0].Name(), m.Name())
		}
		if !bytes.Equal(x, exp) {
			t.Fatalf("epoch %d: %s and %s disagree on the exporter output", wantEpoch, ms[0].Name(), m.Name())
		}
	}
}

// checkMessages sends one application message from every member to all the
// others and checks the plaintexts.
func checkMessages(t *testing.T, ms ...member) {
	t.Helper()
	for _, from := range ms {
		data := []byte("hello from " + from.Name())
		msg := from.Encrypt(t, data)
		for _, to := range ms {
			if to == from {
				continue
			}
			kind, got, err := to.Process(msg)
			if err != nil {
				t.Fatalf("%s: decrypt message of %s: %v", to.Name(), from.Name(), err)
			}
			if kind != "application" || !bytes.Equal(got, data) {
				t.Fatalf("%s: message of %s: kind %s, data %q, want %q", to.Name(), from.Name(), kind, got, data)
			}
		}
	}
}

func groupID(t *testing.T, s suite.ID) []byte {
	return []byte(fmt.Sprintf("%s/suite-%d", t.Name(), s))
}

func newGo(t *testing.T, name string, s suite.ID) *goMember {
	t.Helper()
	g, err := mls.NewGroup(s, mls.BasicCredential([]byte(name)), mls.WithGroupID(groupID(t, s)))
	if err != nil {
		t.Fatalf("%s: new group: %v", name, err)
	}
	return &goMember{name: name, g: g}
}

func newTS(t *testing.T, d *Driver, name string, s suite.ID) *tsMember {
	t.Helper()
	call(t, d, "create", map[string]any{"name": name, "suite": int(s), "groupId": groupID(t, s)})
	return &tsMember{name: name, d: d}
}

func tsKeyPackage(t *testing.T, d *Driver, name string, s suite.ID) []byte {
	t.Helper()
	return call(t, d, "keypackage", map[string]any{"name": name, "suite": int(s)}).KeyPackage
}

func goKeyPackage(t *testing.T, name string, s suite.ID) *mls.KeyPackageBundle {
	t.Helper()
	kpb, err := mls.GenerateKeyPackage(s, mls.BasicCredential([]byte(name)))
	if err != nil {
		t.Fatalf("%s: key package: %v", name, err)
	}
	return kpb
}

func goJoin(t *testing.T, name string, welcome []byte, kpb *mls.KeyPackageBundle, opts ...mls.Option) *goMember {
	t.Helper()
	g, err := mls.Join(welcome, kpb, opts...)
	if err != nil {
		t.Fatalf("%s (Go): join from ts-mls Welcome: %v", name, err)
	}
	return &goMember{name: name, g: g}
}

func forSuites(t *testing.T, f func(t *testing.T, d *Driver, s suite.ID)) {
	for _, s := range suites {
		t.Run(fmt.Sprintf("suite%d", s), func(t *testing.T) {
			t.Parallel() // each suite has its own driver process and Go state
			f(t, startDriver(t), s)
		})
	}
}

// Scenario 1: Go creates the group and adds a ts-mls member.
func TestGoCreatesTSJoins(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		alice := newGo(t, "alice", s)
		bob := &tsMember{name: "bob", d: d}
		res := alice.merge(t)(alice.g.Add([][]byte{tsKeyPackage(t, d, "bob", s)}))
		if res.Welcome == nil {
			t.Fatal("Go add: no Welcome")
		}
		call(t, d, "join", map[string]any{"name": "bob", "welcome": res.Welcome})
		checkAgree(t, 1, alice, bob)
		checkMessages(t, alice, bob)
		// A second epoch from the ts-mls side, so that both directions of
		// commit processing are covered in the two-member group too.
		up := call(t, d, "commit", map[string]any{"name": "bob", "public": false})
		deliver(t, up.Commit, "commit", alice)
		checkAgree(t, 2, alice, bob)
		checkMessages(t, alice, bob)
	})
}

// Scenario 2: ts-mls creates the group and adds a Go member; the Go member
// gets the ratchet tree out of band.
func TestTSCreatesGoJoins(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		alice := newTS(t, d, "alice", s)
		kpb := goKeyPackage(t, "bob", s)
		add := call(t, d, "add", map[string]any{"name": "alice", "keyPackages": []any{Hex(kpb.Bytes())}, "ratchetTreeExtension": false})
		if len(add.Welcome) == 0 {
			t.Fatal("ts-mls add: no Welcome")
		}
		bob := goJoin(t, "bob", add.Welcome, kpb, mls.WithRatchetTree(add.RatchetTree))
		checkAgree(t, 1, alice, bob)
		checkMessages(t, alice, bob)
		up := bob.merge(t)(bob.g.Update(mls.WithHandshakeEncryption(true)))
		deliver(t, up.Commit, "commit", alice)
		checkAgree(t, 2, alice, bob)
		checkMessages(t, alice, bob)
	})
}

// Scenario 3: two Go and two ts-mls members; adds, updates, removals,
// commits from both sides, handshake messages as PublicMessage and as
// PrivateMessage; after every commit all members agree.
func TestMixedGroupOfFour(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		a := newGo(t, "a", s)
		c := &tsMember{name: "c", d: d}
		dd := &tsMember{name: "d", d: d}
		epoch := uint64(0)

		// 1. Go adds ts-mls c (PublicMessage commit).
		res := a.merge(t)(a.g.Add([][]byte{tsKeyPackage(t, d, "c", s)}))
		call(t, d, "join", map[string]any{"name": "c", "welcome": res.Welcome})
		epoch++
		checkAgree(t, epoch, a, c)

		// 2. ts-mls c adds Go b (PrivateMessage commit, tree in the Welcome).
		kpb := goKeyPackage(t, "b", s)
		add := call(t, d, "add", map[string]any{"name": "c", "keyPackages": []any{Hex(kpb.Bytes())}, "public": false})
		deliver(t, add.Commit, "commit", a)
		b := goJoin(t, "b", add.Welcome, kpb)
		epoch++
		checkAgree(t, epoch, a, b, c)

		// 3. Go b proposes adding ts-mls d (PrivateMessage proposal); ts-mls c
		// commits it by reference as a PublicMessage.
		prop, err := b.g.ProposeAdd(tsKeyPackage(t, d, "d", s), mls.WithHandshakeEncryption(true))
		if err != nil {
			t.Fatalf("b: propose add: %v", err)
		}
		deliver(t, prop, "proposal", a, c)
		cm := call(t, d, "commit", map[string]any{"name": "c"})
		if len(cm.Welcome) == 0 {
			t.Fatal("ts-mls commit of the Add proposal: no Welcome")
		}
		deliver(t, cm.Commit, "commit", a, b)
		call(t, d, "join", map[string]any{"name": "d", "welcome": cm.Welcome})
		epoch++
		all := []member{a, b, c, dd}
		checkAgree(t, epoch, all...)
		checkMessages(t, all...)

		// 4. Go b proposes an Update (PublicMessage); ts-mls d commits it
		// (PrivateMessage); b must install its own new leaf key.
		up, err := b.g.ProposeUpdate()
		if err != nil {
			t.Fatalf("b: propose update: %v", err)
		}
		deliver(t, up, "proposal", a, c, dd)
		cm = call(t, d, "commit", map[string]any{"name": "d", "public": false})
		deliver(t, cm.Commit, "commit", a, b, c)
		epoch++
		checkAgree(t, epoch, all...)
		checkMessages(t, all...)

		// 5. ts-mls c updates itself (empty commit with a path, PublicMessage).
		cm = call(t, d, "commit", map[string]any{"name": "c"})
		deliver(t, cm.Commit, "commit", a, b, dd)
		epoch++
		checkAgree(t, epoch, all...)

		// 6. Go a updates itself (PrivateMessage commit with a path).
		res = a.merge(t)(a.g.Update(mls.WithHandshakeEncryption(true)))
		deliver(t, res.Commit, "commit", b, c, dd)
		epoch++
		checkAgree(t, epoch, all...)
		checkMessages(t, all...)

		// 7. Go a removes ts-mls c (PrivateMessage commit). c sees its removal
		// and cannot read the next epoch.
		cLeaf := call(t, d, "state", map[string]any{"name": "c"}).LeafIndex
		res = a.merge(t)(a.g.Remove([]uint32{cLeaf}, mls.WithHandshakeEncryption(true)))
		deliver(t, res.Commit, "commit", b, dd, c)
		if st := call(t, d, "state", map[string]any{"name": "c"}); st.Active {
			t.Fatal("ts-mls c still active after its removal")
		}
		epoch++
		all = []member{a, b, dd}
		checkAgree(t, epoch, all...)
		secret := []byte("after c left")
		msg := a.Encrypt(t, secret)
		deliver(t, msg, "application", b, dd)
		if _, got, err := c.Process(msg); err == nil || bytes.Contains(got, secret) {
			t.Fatalf("removed ts-mls member decrypted a message of the next epoch (err %v)", err)
		}

		// 8. ts-mls d proposes removing Go b (PublicMessage); Go a commits it
		// (PublicMessage). b cannot read the next epoch.
		pr := call(t, d, "propose", map[string]any{"name": "d", "kind": "remove", "leaf": b.g.LeafIndex()})
		deliver(t, pr.Message, "proposal", a, b)
		res = a.merge(t)(a.g.Commit(nil))
		deliver(t, res.Commit, "commit", b, dd)
		if !b.g.Removed() {
			t.Fatal("Go b does not know it was removed")
		}
		epoch++
		all = []member{a, dd}
		checkAgree(t, epoch, all...)
		checkMessages(t, all...)
		msg = dd.Encrypt(t, secret)
		if _, got, err := b.Process(msg); err == nil || bytes.Contains(got, secret) {
			t.Fatalf("removed Go member decrypted a message of the next epoch (err %v)", err)
		}

		// 9. ts-mls d removes Go a by value (PrivateMessage); d is alone.
		cm = call(t, d, "remove", map[string]any{"name": "d", "leaves": []uint32{a.g.LeafIndex()}, "public": false})
		deliver(t, cm.Commit, "commit", a)
		if !a.g.Removed() {
			t.Fatal("Go a does not know it was removed")
		}
	})
}

// Scenario 4: a Go member joins a ts-mls group from its GroupInfo with an
// external commit.
func TestGoJoinsTSExternally(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		alice := newTS(t, d, "alice", s)
		bob := &tsMember{name: "bob", d: d}
		add := call(t, d, "add", map[string]any{"name": "alice", "keyPackages": []any{Hex(tsKeyPackage(t, d, "bob", s))}})
		call(t, d, "join", map[string]any{"name": "bob", "welcome": add.Welcome})
		gi := call(t, d, "groupInfo", map[string]any{"name": "bob"}).GroupInfo
		g, commit, err := mls.JoinExternal(gi, mls.BasicCredential([]byte("carol")))
		if err != nil {
			t.Fatalf("Go: external join from ts-mls GroupInfo: %v", err)
		}
		carol := &goMember{name: "carol", g: g}
		deliver(t, commit, "commit", alice, bob)
		checkAgree(t, 2, alice, bob, carol)
		checkMessages(t, alice, bob, carol)
		// The new member commits next, so its path keys are exercised.
		res := carol.merge(t)(carol.g.Update())
		deliver(t, res.Commit, "commit", alice, bob)
		checkAgree(t, 3, alice, bob, carol)
		checkMessages(t, alice, bob, carol)
	})
}

// The reverse external join: a ts-mls member joins a Go group from the
// GroupInfo Go publishes.
func TestTSJoinsGoExternally(t *testing.T) {
	forSuites(t, func(t *testing.T, d *Driver, s suite.ID) {
		alice := newGo(t, "alice", s)
		gi, err := alice.g.GroupInfo()
		if err != nil {
			t.Fatalf("Go: group info: %v", err)
		}
		j := call(t, d, "joinExternal", map[string]any{"name": "bob", "suite": int(s), "groupInfo": gi})
		bob := &tsMember{name: "bob", d: d}
		deliver(t, j.Commit, "commit", alice)
		checkAgree(t, 1, alice, bob)
		checkMessages(t, alice, bob)
	})
}

// A message from a removed ts-mls peer or garbage must be refused by Go with
// an error, not accepted; this checks that the harness can fail.
func TestTamperedMessageRefused(t *testing.T) {
	d := startDriver(t)
	s := suite.ID(1)
	alice := newGo(t, "alice", s)
	res := alice.merge(t)(alice.g.Add([][]byte{tsKeyPackage(t, d, "bob", s)}))
	call(t, d, "join", map[string]any{"name": "bob", "welcome": res.Welcome})
	msg := (&tsMember{name: "bob", d: d}).Encrypt(t, []byte("hello"))
	msg[len(msg)-1] ^= 1
	if _, err := alice.g.ProcessMessage(msg); err == nil {
		t.Fatal("Go accepted a tampered ts-mls PrivateMessage")
	}
	gm, err := alice.g.Encrypt([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	gm[len(gm)-1] ^= 1
	if _, err := tryCall(d, "process", map[string]any{"name": "bob", "message": gm}); !errors.Is(err, ErrDriver) {
		t.Fatalf("ts-mls on a tampered Go PrivateMessage: %v, want a driver error", err)
	}
}
