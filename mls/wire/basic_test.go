package wire

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/internal/testvec"
)

// roundTrip decodes b into u, re-encodes it and requires identical bytes.
func roundTrip(t testing.TB, what string, b []byte, u interface {
	Marshaler
	Unmarshaler
}) bool {
	t.Helper()
	if err := Decode(b, u); err != nil {
		t.Errorf("%s: decode: %v", what, err)
		return false
	}
	if got := Encode(u); !bytes.Equal(got, b) {
		t.Errorf("%s: re-encoding differs:\n got %x\nwant %x", what, got, b)
		return false
	}
	return true
}

func TestTreeVectorsRoundTrip(t *testing.T) {
	var tv []struct {
		Tree testvec.Hex `json:"tree"`
	}
	testvec.Load(t, "tree-validation.json", &tv)
	c := testvec.Counter{File: "tree-validation.json (ratchet trees)"}
	for i, e := range tv {
		var tree RatchetTree
		if roundTrip(t, "tree-validation tree", e.Tree, &tree) {
			if len(tree) == 0 {
				t.Errorf("entry %d: empty tree", i)
				continue
			}
			c.Passed++
		}
	}
	c.Report(t)

	var tk []struct {
		RatchetTree testvec.Hex `json:"ratchet_tree"`
		UpdatePaths []struct {
			UpdatePath testvec.Hex `json:"update_path"`
		} `json:"update_paths"`
	}
	testvec.Load(t, "treekem.json", &tk)
	c = testvec.Counter{File: "treekem.json (trees and update paths)"}
	for _, e := range tk {
		var tree RatchetTree
		if !roundTrip(t, "treekem tree", e.RatchetTree, &tree) {
			continue
		}
		ok := true
		for _, up := range e.UpdatePaths {
			var p UpdatePath
			ok = roundTrip(t, "treekem update path", up.UpdatePath, &p) && ok
			if ok && p.LeafNode.Source != LeafNodeSourceCommit {
				t.Errorf("update path leaf source %v, want commit", p.LeafNode.Source)
				ok = false
			}
		}
		if ok {
			c.Passed++
		}
	}
	c.Report(t)
}

func TestGroupContextVectors(t *testing.T) {
	var ks []struct {
		GroupID testvec.Hex `json:"group_id"`
		Epochs  []struct {
			GroupContext testvec.Hex `json:"group_context"`
			TreeHash     testvec.Hex `json:"tree_hash"`
		} `json:"epochs"`
	}
	testvec.Load(t, "key-schedule.json", &ks)
	c := testvec.Counter{File: "key-schedule.json (group contexts)"}
	for _, e := range ks {
		for ep, x := range e.Epochs {
			var gc GroupContext
			if !roundTrip(t, "group context", x.GroupContext, &gc) {
				continue
			}
			if !bytes.Equal(gc.GroupID, e.GroupID) || gc.Epoch != uint64(ep) || !bytes.Equal(gc.TreeHash, x.TreeHash) {
				t.Errorf("group context fields: group %x epoch %d tree hash %x", gc.GroupID, gc.Epoch, gc.TreeHash)
				continue
			}
			c.Passed++
		}
	}
	c.Report(t)
}

func TestLeafNodeTBS(t *testing.T) {
	ln := LeafNode{
		EncryptionKey: []byte{1, 2},
		SignatureKey:  []byte{3},
		Credential:    Credential{Type: CredentialTypeBasic, Identity: []byte("alice")},
		Capabilities:  Capabilities{Versions: []ProtocolVersion{MLS10}, CipherSuites: []CipherSuite{1}},
		Source:        LeafNodeSourceCommit,
		ParentHash:    []byte{9, 9},
		Signature:     []byte{7},
	}
	full := Encode(&ln)
	tbs := ln.TBS([]byte{0xAA}, 5)
	// TBS = everything but the signature, then group_id<V> and leaf_index.
	want := append(append([]byte{}, full[:len(full)-2]...), 1, 0xAA, 0, 0, 0, 5)
	if !bytes.Equal(tbs, want) {
		t.Fatalf("commit TBS\n got %x\nwant %x", tbs, want)
	}
	ln.Source = LeafNodeSourceKeyPackage
	ln.Lifetime = Lifetime{NotBefore: 1, NotAfter: 2}
	full = Encode(&ln)
	if tbs := ln.TBS([]byte{0xAA}, 5); !bytes.Equal(tbs, full[:len(full)-2]) {
		t.Fatalf("key package TBS\n got %x\nwant %x", tbs, full[:len(full)-2])
	}
	var back LeafNode
	if err := Decode(full, &back); err != nil || back.Lifetime != ln.Lifetime || string(back.Credential.Identity) != "alice" {
		t.Fatalf("decode: %v %+v", err, back)
	}
}

func TestKeyPackageTBS(t *testing.T) {
	var msgs []struct {
		KeyPackage testvec.Hex `json:"mls_key_package"`
	}
	testvec.Load(t, "messages.json", &msgs)
	for _, m := range msgs[:5] {
		body := m.KeyPackage[4:] // strip MLSMessage version and wire format
		var kp KeyPackage
		if !roundTrip(t, "key package", body, &kp) {
			continue
		}
		tbs := kp.TBS()
		sigLen := len(Encode(&opaqueValue{kp.Signature}))
		if !bytes.Equal(tbs, body[:len(body)-sigLen]) {
			t.Errorf("KeyPackage TBS is not the encoding minus the signature")
		}
	}
}

// opaqueValue encodes one opaque<V>; used to size signatures in tests.
type opaqueValue struct{ b []byte }

func (o *opaqueValue) Marshal(w *codec.Writer) { w.Opaque(o.b) }
