package mls

import (
	"fmt"
	"sync"
	"testing"

	"github.com/agwproject/agw/mls/suite"
)

// benchFixture is a group of n members seen by its creator (alice) and by
// one joined member (bob), saved as states so every benchmark starts from
// the same epoch.
type benchFixture struct {
	alice, bob []byte
	kpb        *KeyPackageBundle // a fresh key package to add
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[int]*benchFixture{}
)

// fixture builds (once) a group of n members: the creator adds n-1
// members in a single commit with a path, so the setup stays fast at
// 1,024. Then the members at leaves 2^k (k = log2(n)-1 ... 0) each commit
// an UpdatePath, as settled groups do, which fills the parent nodes on the
// creator's copath; without that every parent off the creator's direct
// path is blank and an UpdatePath must be encrypted to every leaf.
func fixture(b *testing.B, n int) *benchFixture {
	b.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[n]; ok {
		return f
	}
	const id = suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	alice, err := NewGroup(id, BasicCredential([]byte("alice")))
	if err != nil {
		b.Fatal(err)
	}
	var kps [][]byte
	bundles := map[int]*KeyPackageBundle{}
	for leaf := 1; leaf < n; leaf++ {
		kpb := newKPB(b, id, fmt.Sprintf("member-%d", leaf))
		if leaf&(leaf-1) == 0 {
			bundles[leaf] = kpb
		}
		kps = append(kps, kpb.Bytes())
	}
	res, err := alice.Add(kps, WithPath())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	members := map[int]*Group{0: alice}
	for leaf, kpb := range bundles {
		if members[leaf], err = Join(res.Welcome, kpb); err != nil {
			b.Fatal(err)
		}
	}
	for leaf := n / 2; leaf >= 1; leaf /= 2 {
		res, err := members[leaf].Update()
		if err != nil {
			b.Fatal(err)
		}
		for other, g := range members {
			if other == leaf {
				continue
			}
			if _, err := g.ProcessMessage(res.Commit); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := members[leaf].MergePendingCommit(); err != nil {
			b.Fatal(err)
		}
	}
	f := &benchFixture{kpb: newKPB(b, id, "new")}
	if f.alice, err = members[0].MarshalState(); err != nil {
		b.Fatal(err)
	}
	if f.bob, err = members[1].MarshalState(); err != nil {
		b.Fatal(err)
	}
	fixtures[n] = f
	return f
}

func restore(b *testing.B, state []byte) *Group {
	b.Helper()
	g, err := UnmarshalState(state)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

var benchSizes = []int{2, 16, 128, 1024}

func BenchmarkKeyPackage(b *testing.B) {
	cred := BasicCredential([]byte("bench"))
	for b.Loop() {
		if _, err := GenerateKeyPackage(1, cred); err != nil {
			b.Fatal(err)
		}
	}
}

// commitBench measures creating a commit (add one member, or an empty
// commit with a path) at each group size.
func commitBench(b *testing.B, add bool) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := fixture(b, n)
			alice := restore(b, f.alice)
			kp := [][]byte{f.kpb.Bytes()}
			for b.Loop() {
				var err error
				if add {
					_, err = alice.Add(kp)
				} else {
					_, err = alice.Update()
				}
				if err != nil {
					b.Fatal(err)
				}
				alice.ClearPendingCommit()
			}
		})
	}
}

func BenchmarkCommitAdd(b *testing.B)       { commitBench(b, true) }
func BenchmarkCommitEmptyPath(b *testing.B) { commitBench(b, false) }

// processBench measures a member processing such a commit.
func processBench(b *testing.B, add bool) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := fixture(b, n)
			alice := restore(b, f.alice)
			var res *CommitResult
			var err error
			if add {
				res, err = alice.Add([][]byte{f.kpb.Bytes()})
			} else {
				res, err = alice.Update()
			}
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bob := restore(b, f.bob)
				b.StartTimer()
				if _, err := bob.ProcessMessage(res.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProcessCommitAdd(b *testing.B)       { processBench(b, true) }
func BenchmarkProcessCommitEmptyPath(b *testing.B) { processBench(b, false) }

// BenchmarkJoin measures a new member joining from the Welcome of a
// commit that adds it (ratchet tree in the GroupInfo).
func BenchmarkJoin(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := fixture(b, n)
			alice := restore(b, f.alice)
			res, err := alice.Add([][]byte{f.kpb.Bytes()})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Join(res.Welcome, f.kpb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncrypt1KiB(b *testing.B) {
	f := fixture(b, 2)
	alice := restore(b, f.alice)
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := alice.Encrypt(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt1KiB(b *testing.B) {
	f := fixture(b, 2)
	alice, bob := restore(b, f.alice), restore(b, f.bob)
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ct, err := alice.Encrypt(msg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := bob.Decrypt(ct); err != nil {
			b.Fatal(err)
		}
	}
}

// pair returns a fresh two-member group of suite id seen by its creator
// and by the joined member.
func pair(b testing.TB, id suite.ID) (alice, bob *Group) {
	b.Helper()
	alice, err := NewGroup(id, BasicCredential([]byte("alice")))
	if err != nil {
		b.Fatal(err)
	}
	kpb := newKPB(b, id, "bob")
	res, err := alice.Add([][]byte{kpb.Bytes()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	if bob, err = Join(res.Welcome, kpb); err != nil {
		b.Fatal(err)
	}
	return alice, bob
}

// largeSuites are the suites of the large-message benchmarks: Ed25519
// (whole-message signing) and ECDSA P-256 (hashed signing).
var largeSuites = []suite.ID{
	suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	suite.MLS128DHKEMP256AES128GCMSHA256P256,
}

// largeOpts are the options the sidecar seals its batches with.
func largeOpts() []Option {
	return []Option{WithAuthenticatedData([]byte("agw-batch-v1")), WithPadding(16)}
}

func BenchmarkEncrypt64KiB(b *testing.B) {
	for _, id := range largeSuites {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			alice, _ := pair(b, id)
			msg := make([]byte, 64<<10)
			opts := largeOpts()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := alice.Encrypt(msg, opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt64KiB(b *testing.B) {
	for _, id := range largeSuites {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			alice, bob := pair(b, id)
			msg := make([]byte, 64<<10)
			opts := largeOpts()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			// Messages are made in chunks outside the timer, so the
			// timer is stopped once per chunk rather than per message.
			const chunk = 32
			cts := make([][]byte, 0, chunk)
			b.ResetTimer()
			for i := 0; i < b.N; i += chunk {
				b.StopTimer()
				cts = cts[:0]
				for j := i; j < b.N && j < i+chunk; j++ {
					ct, err := alice.Encrypt(msg, opts...)
					if err != nil {
						b.Fatal(err)
					}
					cts = append(cts, ct)
				}
				b.StartTimer()
				for _, ct := range cts {
					if _, err := bob.Decrypt(ct); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkAppendEncryptVec64KiB is Encrypt64KiB as a caller that keeps
// its batch in 32 pieces of 2 KiB and reuses its message buffer would
// seal it: no concatenation and no message buffer allocated per message.
func BenchmarkAppendEncryptVec64KiB(b *testing.B) {
	for _, id := range largeSuites {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			alice, _ := pair(b, id)
			msg := make([]byte, 64<<10)
			parts := make([][]byte, 0, 32)
			for i := 0; i < len(msg); i += 2 << 10 {
				parts = append(parts, msg[i:i+2<<10])
			}
			opts := largeOpts()
			var buf []byte
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := alice.AppendEncryptVec(buf[:0], parts, opts...)
				if err != nil {
					b.Fatal(err)
				}
				buf = out
			}
		})
	}
}

// BenchmarkDecryptInPlace64KiB is Decrypt64KiB with ProcessMessageInPlace:
// the plaintext is decrypted in the message's own buffer.
func BenchmarkDecryptInPlace64KiB(b *testing.B) {
	for _, id := range largeSuites {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			alice, bob := pair(b, id)
			msg := make([]byte, 64<<10)
			opts := largeOpts()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			const chunk = 32
			cts := make([][]byte, 0, chunk)
			b.ResetTimer()
			for i := 0; i < b.N; i += chunk {
				b.StopTimer()
				cts = cts[:0]
				for j := i; j < b.N && j < i+chunk; j++ {
					ct, err := alice.Encrypt(msg, opts...)
					if err != nil {
						b.Fatal(err)
					}
					cts = append(cts, ct)
				}
				b.StartTimer()
				for _, ct := range cts {
					if _, err := bob.ProcessMessageInPlace(ct); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkCryptoFloor64KiB measures only the cryptography a 64 KiB
// application message needs (sign: hash and signature; AEAD), with no
// allocation of message buffers: the floor for Encrypt64KiB (seal) and
// Decrypt64KiB (open).
func BenchmarkCryptoFloor64KiB(b *testing.B) {
	for _, id := range largeSuites {
		s, err := suite.Get(id)
		if err != nil {
			b.Fatal(err)
		}
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		signer, err := s.NewSigner(priv)
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, 64<<10)
		key, nonce := make([]byte, s.AEADKeySize()), make([]byte, s.AEADNonceSize())
		buf := make([]byte, len(msg)+s.AEADOverhead())
		b.Run(fmt.Sprintf("seal/suite=%d", id), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signer.SignWithLabel(labelFramedContent, msg); err != nil {
					b.Fatal(err)
				}
				if _, err := s.SealAppend(buf[:0], key, nonce, nil, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		sig, err := signer.SignWithLabel(labelFramedContent, msg)
		if err != nil {
			b.Fatal(err)
		}
		ct, err := s.Seal(key, nonce, nil, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("open/suite=%d", id), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.OpenAppend(buf[:0], key, nonce, nil, ct); err != nil {
					b.Fatal(err)
				}
				if err := s.VerifyWithLabel(pub, labelFramedContent, msg, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
