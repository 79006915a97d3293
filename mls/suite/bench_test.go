package suite

import (
	"testing"
)

func BenchmarkHPKE(b *testing.B) {
	for _, s := range allSuites(b) {
		priv, pub, err := s.GenerateHPKEKey()
		if err != nil {
			b.Fatal(err)
		}
		ctx, pt := make([]byte, 32), make([]byte, 64)
		b.Run(s.ID().String()+"/encrypt", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.EncryptWithLabel(pub, "UpdatePathNode", ctx, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
		kem, ct, _ := s.EncryptWithLabel(pub, "UpdatePathNode", ctx, pt)
		b.Run(s.ID().String()+"/decrypt", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, kem, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignature(b *testing.B) {
	for _, s := range allSuites(b) {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		b.Run(s.ID().String()+"/sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.SignWithLabel(priv, "LeafNodeTBS", content); err != nil {
					b.Fatal(err)
				}
			}
		})
		g, _ := s.NewSigner(priv)
		b.Run(s.ID().String()+"/sign-parsed", func(b *testing.B) {
			for b.Loop() {
				if _, err := g.SignWithLabel("LeafNodeTBS", content); err != nil {
					b.Fatal(err)
				}
			}
		})
		sig, _ := s.SignWithLabel(priv, "LeafNodeTBS", content)
		b.Run(s.ID().String()+"/verify", func(b *testing.B) {
			for b.Loop() {
				if err := s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAEAD(b *testing.B) {
	for _, s := range allSuites(b) {
		key, nonce, pt := make([]byte, s.AEADKeySize()), make([]byte, s.AEADNonceSize()), make([]byte, 1024)
		b.Run(s.ID().String()+"/seal-1KiB", func(b *testing.B) {
			b.SetBytes(1024)
			for b.Loop() {
				if _, err := s.Seal(key, nonce, nil, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDeriveSecret(b *testing.B) {
	s, _ := Get(1)
	secret := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		s.DeriveSecret(secret, "encryption")
	}
}
