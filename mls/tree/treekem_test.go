package tree

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
	"github.com/agwproject/agw/mls/suite"
	"github.com/agwproject/agw/mls/wire"
)

type treeKEMVector struct {
	CipherSuite             uint16      `json:"cipher_suite"`
	GroupID                 testvec.Hex `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	ConfirmedTranscriptHash testvec.Hex `json:"confirmed_transcript_hash"`
	RatchetTree             testvec.Hex `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32      `json:"index"`
		EncryptionPriv testvec.Hex `json:"encryption_priv"`
		SignaturePriv  testvec.Hex `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32      `json:"node"`
			PathSecret testvec.Hex `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32        `json:"sender"`
		UpdatePath    testvec.Hex   `json:"update_path"`
		PathSecrets   []testvec.Hex `json:"path_secrets"`
		CommitSecret  testvec.Hex   `json:"commit_secret"`
		TreeHashAfter testvec.Hex   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// groupContextFn encodes the provisional GroupContext of a treekem vector.
func groupContextFn(s *suite.Suite, groupID []byte, epoch uint64, cth []byte) GroupContextFunc {
	return func(treeHash []byte) ([]byte, error) {
		gc := wire.GroupContext{
			Version:                 wire.MLS10,
			CipherSuite:             wire.CipherSuite(s.ID()),
			GroupID:                 groupID,
			Epoch:                   epoch,
			TreeHash:                treeHash,
			ConfirmedTranscriptHash: cth,
		}
		return wire.Encode(&gc), nil
	}
}

func TestTreeKEMVectors(t *testing.T) {
	var vs []treeKEMVector
	testvec.Load(t, "treekem.json", &vs)
	c := testvec.Counter{File: "treekem.json"}
	for n, v := range vs {
		s := vecsuite.ForHeavy(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		t.Run(fmt.Sprintf("%d_suite%d", n, v.CipherSuite), func(t *testing.T) {
			runTreeKEMVector(t, s, &v)
			if !t.Failed() {
				c.Passed++
			}
		})
	}
	c.Report(t)
}

func runTreeKEMVector(t *testing.T, s *suite.Suite, v *treeKEMVector) {
	base, err := DecodeBytes(s, v.RatchetTree)
	if err != nil {
		t.Fatalf("decode tree: %v", err)
	}
	if err := base.ParentHashValid(); err != nil {
		t.Fatalf("initial tree: %v", err)
	}
	gcFn := groupContextFn(s, v.GroupID, v.Epoch, v.ConfirmedTranscriptHash)
	privs := map[LeafIndex]*Private{}
	signers := map[LeafIndex]*suite.Signer{}
	for _, lp := range v.LeavesPrivate {
		p := NewPrivate(LeafIndex(lp.Index), lp.EncryptionPriv)
		for _, ps := range lp.PathSecrets {
			if err := p.SetPathSecret(s, NodeIndex(ps.Node), ps.PathSecret); err != nil {
				t.Fatalf("leaf %d path secret: %v", lp.Index, err)
			}
		}
		if err := p.Check(base); err != nil {
			t.Fatalf("leaf %d private state does not match the tree: %v", lp.Index, err)
		}
		privs[p.Leaf] = p
		sg, err := s.NewSigner(lp.SignaturePriv)
		if err != nil {
			t.Fatalf("leaf %d signer: %v", lp.Index, err)
		}
		signers[p.Leaf] = sg
	}

	for u, up := range v.UpdatePaths {
		sender := LeafIndex(up.Sender)
		var path wire.UpdatePath
		if err := wire.Decode(up.UpdatePath, &path); err != nil {
			t.Fatalf("path %d: decode: %v", u, err)
		}
		if err := ValidateLeaf(s, &path.LeafNode, v.GroupID, sender, wire.LeafNodeSourceCommit); err != nil {
			t.Errorf("path %d: leaf: %v", u, err)
		}
		merged := base.Clone()
		if err := MergePath(merged, sender, &path); err != nil {
			t.Fatalf("path %d: merge: %v", u, err)
		}
		if got := merged.TreeHash(); !bytes.Equal(got, up.TreeHashAfter) {
			t.Errorf("path %d: tree hash after = %x, want %x", u, got, up.TreeHashAfter)
		}
		if err := merged.ParentHashValid(); err != nil {
			t.Errorf("path %d: merged tree: %v", u, err)
		}
		if len(up.PathSecrets) != int(base.LeafCount()) {
			t.Fatalf("path %d: %d path secrets for %d leaves", u, len(up.PathSecrets), base.LeafCount())
		}
		for leaf, p := range privs {
			if leaf == sender {
				continue
			}
			tr := base.Clone()
			res, err := ApplyPath(tr, sender, &path, p, gcFn, nil)
			if err != nil {
				t.Errorf("path %d: leaf %d: apply: %v", u, leaf, err)
				continue
			}
			if !bytes.Equal(res.PathSecret, up.PathSecrets[leaf]) {
				t.Errorf("path %d: leaf %d: path secret differs", u, leaf)
			}
			if !bytes.Equal(res.CommitSecret, up.CommitSecret) {
				t.Errorf("path %d: leaf %d: commit secret differs", u, leaf)
			}
			if !bytes.Equal(tr.TreeHash(), up.TreeHashAfter) {
				t.Errorf("path %d: leaf %d: tree hash after differs", u, leaf)
			}
			if err := res.Private.Check(tr); err != nil {
				t.Errorf("path %d: leaf %d: new private state: %v", u, leaf, err)
			}
			if err := p.Check(base); err != nil {
				t.Errorf("path %d: leaf %d: ApplyPath changed the old private state: %v", u, leaf, err)
			}
		}
	}

	// A fresh UpdatePath from every member with private keys: every other
	// member must derive the same commit secret and tree.
	for sender, sg := range signers {
		gen := base.Clone()
		r, err := GeneratePath(gen, PathParams{Sender: sender, GroupID: v.GroupID, Signer: sg, GroupContext: gcFn})
		if err != nil {
			t.Fatalf("generate from %d: %v", sender, err)
		}
		if err := ValidateLeaf(s, &r.Path.LeafNode, v.GroupID, sender, wire.LeafNodeSourceCommit); err != nil {
			t.Errorf("generate from %d: new leaf: %v", sender, err)
		}
		if err := gen.ParentHashValid(); err != nil {
			t.Errorf("generate from %d: tree after: %v", sender, err)
		}
		if err := r.Private.Check(gen); err != nil {
			t.Errorf("generate from %d: sender private state: %v", sender, err)
		}
		enc := wire.Encode(r.Path)
		for leaf, p := range privs {
			if leaf == sender {
				continue
			}
			var path wire.UpdatePath
			if err := wire.Decode(enc, &path); err != nil {
				t.Fatalf("decode generated path: %v", err)
			}
			tr := base.Clone()
			res, err := ApplyPath(tr, sender, &path, p, gcFn, nil)
			if err != nil {
				t.Errorf("generated by %d: leaf %d: apply: %v", sender, leaf, err)
				continue
			}
			if !bytes.Equal(res.CommitSecret, r.CommitSecret) {
				t.Errorf("generated by %d: leaf %d: commit secret differs", sender, leaf)
			}
			if !bytes.Equal(tr.TreeHash(), gen.TreeHash()) {
				t.Errorf("generated by %d: leaf %d: tree hash differs", sender, leaf)
			}
			if !bytes.Equal(res.PathSecret, r.PathSecretFor(leaf)) {
				t.Errorf("generated by %d: leaf %d: path secret differs from PathSecretFor", sender, leaf)
			}
		}
	}
}
