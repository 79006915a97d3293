package tree

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
	"github.com/agwproject/agw/mls/wire"
)

type treeValidationVector struct {
	CipherSuite uint16        `json:"cipher_suite"`
	Tree        testvec.Hex   `json:"tree"`
	GroupID     testvec.Hex   `json:"group_id"`
	TreeHashes  []testvec.Hex `json:"tree_hashes"`
	Resolutions [][]uint32    `json:"resolutions"`
}

func TestTreeValidationVectors(t *testing.T) {
	var vs []treeValidationVector
	testvec.Load(t, "tree-validation.json", &vs)
	c := testvec.Counter{File: "tree-validation.json"}
	for n, v := range vs {
		s := vecsuite.ForHeavy(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		t.Run(fmt.Sprintf("%d_suite%d", n, v.CipherSuite), func(t *testing.T) {
			tr, err := DecodeBytes(s, v.Tree)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := tr.EncodeBytes(); !bytes.Equal(got, v.Tree) {
				t.Fatalf("re-encoded tree differs")
			}
			if int(tr.NodeCount()) != len(v.TreeHashes) || len(v.Resolutions) != len(v.TreeHashes) {
				t.Fatalf("tree has %d nodes, vector %d hashes and %d resolutions", tr.NodeCount(), len(v.TreeHashes), len(v.Resolutions))
			}
			for i := range v.TreeHashes {
				x := NodeIndex(i)
				if got := tr.NodeHash(x); !bytes.Equal(got, v.TreeHashes[i]) {
					t.Errorf("tree hash of node %d = %x, want %x", i, got, v.TreeHashes[i])
				}
				res := tr.Resolution(x)
				if len(res) != len(v.Resolutions[i]) {
					t.Errorf("resolution of node %d = %v, want %v", i, res, v.Resolutions[i])
					continue
				}
				for k := range res {
					if uint32(res[k]) != v.Resolutions[i][k] {
						t.Errorf("resolution of node %d = %v, want %v", i, res, v.Resolutions[i])
						break
					}
				}
			}
			if err := tr.ParentHashValid(); err != nil {
				t.Errorf("parent hashes: %v", err)
			}
			if err := tr.VerifyLeafSignatures(v.GroupID); err != nil {
				t.Errorf("leaf signatures: %v", err)
			}
			if err := tr.Validate(v.GroupID); err != nil {
				t.Errorf("validate: %v", err)
			}
			// A fresh decode computes the root hash without the per-node
			// cache warmed bottom up.
			tr2, _ := DecodeBytes(s, v.Tree)
			if !bytes.Equal(tr2.TreeHash(), v.TreeHashes[tr2.Root()]) {
				t.Errorf("root tree hash differs")
			}
			if !t.Failed() {
				c.Passed++
			}
		})
	}
	c.Report(t)
}

type treeOperationsVector struct {
	CipherSuite    uint16      `json:"cipher_suite"`
	TreeBefore     testvec.Hex `json:"tree_before"`
	Proposal       testvec.Hex `json:"proposal"`
	ProposalSender uint32      `json:"proposal_sender"`
	TreeAfter      testvec.Hex `json:"tree_after"`
	TreeHashBefore testvec.Hex `json:"tree_hash_before"`
	TreeHashAfter  testvec.Hex `json:"tree_hash_after"`
}

func TestTreeOperationsVectors(t *testing.T) {
	var vs []treeOperationsVector
	testvec.Load(t, "tree-operations.json", &vs)
	c := testvec.Counter{File: "tree-operations.json"}
	for n, v := range vs {
		s := vecsuite.ForHeavy(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tr, err := DecodeBytes(s, v.TreeBefore)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := tr.TreeHash(); !bytes.Equal(got, v.TreeHashBefore) {
				t.Fatalf("tree hash before = %x, want %x", got, v.TreeHashBefore)
			}
			var p wire.Proposal
			if err := wire.Decode(v.Proposal, &p); err != nil {
				t.Fatalf("decode proposal: %v", err)
			}
			switch p.Type {
			case wire.ProposalTypeAdd:
				tr.AddLeaf(&p.Add.KeyPackage.LeafNode)
			case wire.ProposalTypeUpdate:
				err = tr.UpdateLeaf(LeafIndex(v.ProposalSender), &p.Update.LeafNode)
			case wire.ProposalTypeRemove:
				err = tr.RemoveLeaf(LeafIndex(p.Remove.Removed))
			default:
				t.Fatalf("unexpected proposal type %v", p.Type)
			}
			if err != nil {
				t.Fatalf("apply %v: %v", p.Type, err)
			}
			if got := tr.EncodeBytes(); !bytes.Equal(got, v.TreeAfter) {
				t.Errorf("tree after %v differs", p.Type)
			}
			if got := tr.TreeHash(); !bytes.Equal(got, v.TreeHashAfter) {
				t.Errorf("tree hash after = %x, want %x", got, v.TreeHashAfter)
			}
			// The cached hash must equal one computed from scratch.
			fresh, err := DecodeBytes(s, v.TreeAfter)
			if err != nil {
				t.Fatalf("decode tree after: %v", err)
			}
			if !bytes.Equal(fresh.TreeHash(), tr.TreeHash()) {
				t.Errorf("cached tree hash differs from a fresh computation")
			}
			if !t.Failed() {
				c.Passed++
			}
		})
	}
	c.Report(t)
}
