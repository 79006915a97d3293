package schedule

import (
	"testing"

	"github.com/agwproject/agw/mls/suite"
)

// BenchmarkKeyScheduleEpoch is one epoch of the key schedule (joiner,
// welcome, epoch and the nine epoch secrets).
func BenchmarkKeyScheduleEpoch(b *testing.B) {
	for _, id := range suite.Supported() {
		s, _ := suite.Get(id)
		init, commit := secretOf(s, 1), secretOf(s, 2)
		gc := make([]byte, 150)
		b.Run(id.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sec, err := Advance(s, init, commit, nil, gc)
				if err != nil {
					b.Fatal(err)
				}
				init = sec.InitSecret
			}
		})
	}
}

// BenchmarkSecretTreeLeafKey1024 is the first key of one leaf in a fresh
// 1,024-leaf secret tree: the lazy path derivation (10 levels), the leaf's
// ratchets and one key/nonce.
func BenchmarkSecretTreeLeafKey1024(b *testing.B) {
	s, _ := suite.Get(1)
	enc := secretOf(s, 3)
	b.ReportAllocs()
	leaf := uint32(0)
	for b.Loop() {
		tree, err := NewSecretTree(s, enc, 1024)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tree.Get(leaf, Application, 0); err != nil {
			b.Fatal(err)
		}
		leaf = (leaf + 337) % 1024
	}
}

// BenchmarkSecretTreeAllLeaves1024 derives the first application key of
// every leaf of a 1,024-leaf tree (the whole tree, each node once).
func BenchmarkSecretTreeAllLeaves1024(b *testing.B) {
	s, _ := suite.Get(1)
	enc := secretOf(s, 3)
	for b.Loop() {
		tree, _ := NewSecretTree(s, enc, 1024)
		for leaf := range uint32(1024) {
			if _, err := tree.Get(leaf, Application, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRatchetNext is the steady-state cost of one message key.
func BenchmarkRatchetNext(b *testing.B) {
	s, _ := suite.Get(1)
	tree, _ := NewSecretTree(s, secretOf(s, 3), 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tree.Next(7, Application); err != nil {
			b.Fatal(err)
		}
	}
}
