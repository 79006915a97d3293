package mls

import (
	"bytes"
	"testing"
)

// FuzzProcessMessage feeds arbitrary bytes to a member: it must return an
// error or a result, never panic, and a failed message must not change
// the group's epoch.
func FuzzProcessMessage(f *testing.F) {
	alice, bob := twoMembers(f)
	app, _ := alice.Encrypt([]byte("seed"))
	prop, _ := alice.ProposeUpdate()
	alice.proposals = nil
	res, _ := alice.Update()
	alice.ClearPendingCommit()
	gi, _ := alice.GroupInfo()
	for _, s := range [][]byte{app, prop, res.Commit, gi, {0, 1, 0, 1}, nil} {
		f.Add(s)
	}
	state, err := bob.MarshalState()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		g, err := UnmarshalState(state)
		if err != nil {
			t.Fatal(err)
		}
		epoch := g.Epoch()
		orig := bytes.Clone(msg)
		p, err := g.ProcessMessage(msg)
		if err != nil && g.Epoch() != epoch {
			t.Fatalf("failed message changed the epoch")
		}
		if !bytes.Equal(msg, orig) {
			t.Fatal("ProcessMessage modified its input")
		}
		// In place, on a fresh copy of the state: the same outcome.
		g2, err2 := UnmarshalState(state)
		if err2 != nil {
			t.Fatal(err2)
		}
		p2, err2 := g2.ProcessMessageInPlace(bytes.Clone(msg))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("ProcessMessage: %v; in place: %v", err, err2)
		}
		if err == nil && (p.Kind != p2.Kind || !bytes.Equal(p.Application, p2.Application) || g.Epoch() != g2.Epoch()) {
			t.Fatal("in-place processing gave another result")
		}
	})
}

// FuzzUnmarshalState checks that arbitrary bytes never panic the state
// decoder and that a decoded state re-encodes.
func FuzzUnmarshalState(f *testing.F) {
	_, bob := twoMembers(f)
	state, err := bob.MarshalState()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(state)
	f.Add(state[:len(state)/2])
	f.Add([]byte("agw-mls-state\x01"))
	// A state with a pending Update proposal that rotates the credential.
	priv, _, err := bob.s.GenerateSignatureKey()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := bob.ProposeUpdate(WithLeafCredential(BasicCredential([]byte("bob#2")), priv)); err != nil {
		f.Fatal(err)
	}
	if state, err = bob.MarshalState(); err != nil {
		f.Fatal(err)
	}
	f.Add(state)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalState(b)
		if err != nil {
			return
		}
		if _, err := g.MarshalState(); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// FuzzJoin feeds arbitrary Welcome bytes to Join.
func FuzzJoin(f *testing.F) {
	alice, err := NewGroup(1, BasicCredential([]byte("alice")))
	if err != nil {
		f.Fatal(err)
	}
	kpb := newKPB(f, 1, "bob")
	res, err := alice.Add([][]byte{kpb.Bytes()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Welcome)
	f.Add(res.GroupInfo)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Join(b, kpb)
		_, _, _ = JoinExternal(b, BasicCredential([]byte("x")))
	})
}

// FuzzUnmarshalKeyPackageBundle checks the bundle decoder on arbitrary bytes.
func FuzzUnmarshalKeyPackageBundle(f *testing.F) {
	kpb := newKPB(f, 1, "bob")
	enc, err := kpb.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(enc[:len(enc)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		if kpb, err := UnmarshalKeyPackageBundle(b); err == nil {
			if _, err := kpb.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
