package wire

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

// bigTree builds a full tree of the given number of leaves with
// realistically sized keys and signatures (suite 1 sizes).
func bigTree(leaves int) RatchetTree {
	key := func(i, salt int) []byte { return bytes.Repeat([]byte{byte(i), byte(salt)}, 16) }
	tree := make(RatchetTree, 2*leaves-1)
	for i := range tree {
		if i%2 == 0 {
			tree[i] = &Node{Type: NodeTypeLeaf, Leaf: &LeafNode{
				EncryptionKey: key(i, 1), SignatureKey: key(i, 2),
				Credential: Credential{Type: CredentialTypeBasic, Identity: []byte("member-identity-000")},
				Capabilities: Capabilities{
					Versions: []ProtocolVersion{MLS10}, CipherSuites: []CipherSuite{1, 2, 3},
					Extensions: []ExtensionType{ExtensionTypeExternalSenders}, Proposals: []ProposalType{}, Credentials: []CredentialType{1},
				},
				Source:     LeafNodeSourceCommit,
				ParentHash: key(i, 3),
				Signature:  append(key(i, 4), key(i, 5)...),
			}}
		} else {
			tree[i] = &Node{Type: NodeTypeParent, Parent: &ParentNode{EncryptionKey: key(i, 6), ParentHash: key(i, 7)}}
		}
	}
	return tree
}

func BenchmarkRatchetTree(b *testing.B) {
	tree := bigTree(1024)
	enc := Encode(&tree)
	b.Run("Decode1024Leaves", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			var t RatchetTree
			if err := Decode(enc, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode1024Leaves", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			_ = Encode(&tree)
		}
	})
}

func BenchmarkWelcome(b *testing.B) {
	var vs []passiveVector
	testvec.Load(b, "passive-client-random.json", &vs)
	enc := vs[0].Welcome
	var m MLSMessage
	if err := Decode(enc, &m); err != nil {
		b.Fatal(err)
	}
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			var m MLSMessage
			if err := Decode(enc, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			_ = Encode(&m)
		}
	})
}

func TestBigTreeRoundTrip(t *testing.T) {
	tree := bigTree(64)
	var back RatchetTree
	if !roundTrip(t, "big tree", Encode(&tree), &back) || len(back) != len(tree) {
		t.Fatalf("big tree: %d nodes back, want %d", len(back), len(tree))
	}
}
