package tree

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/wire"
)

// FuzzDecodeBytes feeds arbitrary ratchet trees to DecodeBytes and, when
// one decodes, to every read-only operation: none may panic, and encoding
// must round-trip.
func FuzzDecodeBytes(f *testing.F) {
	var vs []treeValidationVector
	testvec.Load(f, "tree-validation.json", &vs)
	for _, v := range vs {
		if v.CipherSuite == 1 {
			f.Add([]byte(v.Tree))
		}
	}
	var ops []treeOperationsVector
	testvec.Load(f, "tree-operations.json", &ops)
	for _, v := range ops {
		f.Add([]byte(v.TreeBefore))
	}
	f.Add([]byte{})
	f.Add([]byte{0x02, 0x00, 0x00})
	s := mustSuite(f, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeBytes(s, b)
		if err != nil {
			return
		}
		enc := tr.EncodeBytes()
		tr2, err := DecodeBytes(s, enc)
		if err != nil {
			t.Fatalf("re-decode of an encoded tree: %v", err)
		}
		if !bytes.Equal(tr2.EncodeBytes(), enc) {
			t.Fatal("encoding is not stable")
		}
		_ = tr.TreeHash()
		for x := NodeIndex(0); uint32(x) < tr.NodeCount(); x++ {
			_ = tr.Resolution(x)
		}
		_ = tr.ParentHashValid()
		_ = tr.Validate([]byte("g"))
		for _, i := range tr.Members() {
			_ = tr.FilteredDirectPath(i)
		}
		if !bytes.Equal(tr.TreeHash(), tr2.TreeHash()) {
			t.Fatal("tree hash differs after a round trip")
		}
		// Apply an update path with no nodes: must fail cleanly or merge.
		if m := tr.Members(); len(m) > 0 {
			_ = MergePath(tr.Clone(), m[0], &wire.UpdatePath{LeafNode: wire.LeafNode{Source: wire.LeafNodeSourceCommit}})
			_ = tr.RemoveLeaf(m[len(m)-1])
		}
	})
}
