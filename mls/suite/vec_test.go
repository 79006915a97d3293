package suite

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

// refSignContent encodes SignContent by hand (RFC 9420 §5.1.2), for
// labels and contents under 64 and 16,384 bytes.
func refSignContent(label string, content []byte) []byte {
	l := "MLS 1.0 " + label
	out := []byte{byte(len(l))}
	out = append(out, l...)
	if len(content) < 64 {
		out = append(out, byte(len(content)))
	} else {
		out = append(out, 0x40|byte(len(content)>>8), byte(len(content)))
	}
	return append(out, content...)
}

// splits returns content cut into pieces in several ways, empty and nil
// pieces included.
func splits(content []byte) [][][]byte {
	out := [][][]byte{{content}, {nil, content, {}}, {}}
	if len(content) == 0 {
		return out[:2]
	}
	out = out[:2]
	for _, cut := range []int{1, len(content) / 2, len(content) - 1} {
		out = append(out, [][]byte{content[:cut], nil, content[cut:]})
	}
	var bytewise [][]byte
	for i := range content {
		bytewise = append(bytewise, content[i:i+1])
	}
	return append(out, bytewise)
}

func TestSignWithLabelVec(t *testing.T) {
	const label = "FramedContentTBS"
	for _, s := range allSuites(t) {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		g, err := s.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 63, 64, 300, 5000} {
			content := make([]byte, n)
			rand.Read(content)
			ref := refSignContent(label, content)
			for i, parts := range splits(content) {
				name := fmt.Sprintf("%s/len=%d/split=%d", s, n, i)
				sig, err := g.SignWithLabelVec(label, parts)
				if err != nil {
					t.Fatalf("%s: sign: %v", name, err)
				}
				// The signature is over the hand-built SignContent.
				if s.sig == sigEd25519 {
					want := ed25519.Sign(g.ed, ref)
					if !bytes.Equal(sig, want) {
						t.Fatalf("%s: Ed25519 signature differs from one over SignContent", name)
					}
				} else if !ecdsa.VerifyASN1(&g.ecdsa.PublicKey, s.Hash(ref), sig) {
					t.Fatalf("%s: ECDSA signature does not verify over SignContent", name)
				}
				if err := s.VerifyWithLabel(pub, label, content, sig); err != nil {
					t.Fatalf("%s: VerifyWithLabel: %v", name, err)
				}
				if err := s.VerifyWithLabelVec(pub, label, parts, sig); err != nil {
					t.Fatalf("%s: VerifyWithLabelVec: %v", name, err)
				}
				// Another label, other content or a flipped bit fail.
				if err := s.VerifyWithLabelVec(pub, "KeyPackageTBS", parts, sig); !errors.Is(err, ErrVerify) {
					t.Fatalf("%s: other label: %v", name, err)
				}
				if err := s.VerifyWithLabelVec(pub, label, append(parts, []byte{0}), sig); !errors.Is(err, ErrVerify) {
					t.Fatalf("%s: longer content: %v", name, err)
				}
				bad := append([]byte(nil), sig...)
				bad[len(bad)/2] ^= 1
				if err := s.VerifyWithLabelVec(pub, label, parts, bad); !errors.Is(err, ErrVerify) {
					t.Fatalf("%s: flipped signature: %v", name, err)
				}
				if n > 0 && i == 0 {
					other := bytes.Clone(content)
					other[n-1] ^= 0x80
					if err := s.VerifyWithLabelVec(pub, label, [][]byte{other}, sig); !errors.Is(err, ErrVerify) {
						t.Fatalf("%s: changed content: %v", name, err)
					}
				}
			}
		}
		if err := s.VerifyWithLabelVec(pub[:len(pub)-1], label, nil, make([]byte, 64)); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("%s: short public key: %v", s, err)
		}
	}
}

// TestSignScratchNotShared checks that the reused Ed25519 buffer is not
// visible to concurrent signers (run with -race).
func TestSignScratchNotShared(t *testing.T) {
	s, err := Get(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			content := bytes.Repeat([]byte{byte(w)}, 1000*(w+1))
			for range 50 {
				sig, err := g.SignWithLabelVec("x", [][]byte{content[:10], content[10:]})
				if err == nil {
					err = s.VerifyWithLabel(pub, "x", content, sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSealOpenAppendInPlace(t *testing.T) {
	for _, s := range allSuites(t) {
		key := make([]byte, s.AEADKeySize())
		nonce := make([]byte, s.AEADNonceSize())
		rand.Read(key)
		rand.Read(nonce)
		aad := []byte("aad")
		for _, n := range []int{0, 1, 100, 70000} {
			pt := make([]byte, n)
			rand.Read(pt)
			want, err := s.Seal(key, nonce, aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			// In place: the plaintext's buffer, with room for the tag.
			buf := make([]byte, n, n+s.AEADOverhead())
			copy(buf, pt)
			got, err := s.SealAppend(buf[:0], key, nonce, aad, buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || &got[:1][0] != &buf[:1][0] {
				t.Fatalf("%s len %d: in-place seal differs or moved", s, n)
			}
			// Appending after a prefix.
			got2, err := s.SealAppend([]byte("head"), key, nonce, aad, pt)
			if err != nil || !bytes.Equal(got2, append([]byte("head"), want...)) {
				t.Fatalf("%s len %d: append seal: %v", s, n, err)
			}
			// Open in place.
			opened, err := s.OpenAppend(got[:0], key, nonce, aad, got)
			if err != nil || !bytes.Equal(opened, pt) {
				t.Fatalf("%s len %d: in-place open: %v", s, n, err)
			}
			bad := bytes.Clone(want)
			bad[0] ^= 1
			if _, err := s.OpenAppend(bad[:0], key, nonce, aad, bad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s len %d: tampered open: %v", s, n, err)
			}
			if _, err := s.SealAppend(nil, key[1:], nonce, aad, pt); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("%s: short key: %v", s, err)
			}
			if _, err := s.OpenAppend(nil, key, nonce[1:], aad, want); !errors.Is(err, ErrInvalidLength) {
				t.Fatalf("%s: short nonce: %v", s, err)
			}
		}
	}
}
