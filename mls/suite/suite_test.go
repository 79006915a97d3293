package suite

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"strings"
	"testing"
)

func allSuites(t testing.TB) []*Suite {
	t.Helper()
	var out []*Suite
	for _, id := range Supported() {
		s, err := Get(id)
		if err != nil {
			t.Fatalf("Get(%d): %v", id, err)
		}
		out = append(out, s)
	}
	return out
}

func TestGetUnsupported(t *testing.T) {
	for _, id := range []ID{0, 4, 6, 8, 0x0a0a, 0xffff} {
		s, err := Get(id)
		if s != nil || !errors.Is(err, ErrUnsupported) {
			t.Errorf("Get(%d) = %v, %v; want ErrUnsupported", id, s, err)
		}
	}
	_, err := Get(4)
	if !strings.Contains(err.Error(), "X448") {
		t.Errorf("Get(4) error %q does not say why", err)
	}
}

func TestSuiteParameters(t *testing.T) {
	want := map[ID][3]int{1: {32, 16, 12}, 2: {32, 16, 12}, 3: {32, 32, 12}, 5: {64, 32, 12}, 7: {48, 32, 12}}
	for _, s := range allSuites(t) {
		w := want[s.ID()]
		if s.Nh() != w[0] || s.AEADKeySize() != w[1] || s.AEADNonceSize() != w[2] {
			t.Errorf("%s: Nh %d Nk %d Nn %d, want %v", s, s.Nh(), s.AEADKeySize(), s.AEADNonceSize(), w)
		}
		if len(s.Hash(nil)) != s.Nh() || len(s.Extract(nil, []byte("x"))) != s.Nh() || len(s.MAC(nil, nil)) != s.Nh() {
			t.Errorf("%s: output lengths differ from Nh", s)
		}
	}
}

func TestExpandBounds(t *testing.T) {
	for _, s := range allSuites(t) {
		prk := s.Extract(nil, []byte("ikm"))
		if got := s.Expand(prk, nil, 255*s.Nh()); len(got) != 255*s.Nh() {
			t.Errorf("%s: Expand(max) gave %d bytes", s, len(got))
		}
		if got := s.Expand(prk, nil, 255*s.Nh()+1); got != nil {
			t.Errorf("%s: Expand over the HKDF limit gave %d bytes, want nil", s, len(got))
		}
		if got := s.Expand(prk, nil, -1); got != nil {
			t.Errorf("%s: Expand(-1) not nil", s)
		}
		// A prefix property of HKDF: shorter outputs are prefixes of longer ones.
		long, short := s.Expand(prk, []byte("info"), 3*s.Nh()+5), s.Expand(prk, []byte("info"), s.Nh()+1)
		if !bytes.HasPrefix(long, short) {
			t.Errorf("%s: Expand outputs are not prefix-consistent", s)
		}
	}
}

func TestMAC(t *testing.T) {
	for _, s := range allSuites(t) {
		key, data := []byte("key"), []byte("data")
		tag := s.MAC(key, data)
		if !s.VerifyMAC(key, data, tag) {
			t.Errorf("%s: VerifyMAC rejected a good tag", s)
		}
		bad := bytes.Clone(tag)
		bad[0] ^= 1
		if s.VerifyMAC(key, data, bad) || s.VerifyMAC(key, []byte("other"), tag) || s.VerifyMAC(key, data, tag[:len(tag)-1]) {
			t.Errorf("%s: VerifyMAC accepted a bad tag", s)
		}
	}
}

func TestAEAD(t *testing.T) {
	for _, s := range allSuites(t) {
		key := bytes.Repeat([]byte{7}, s.AEADKeySize())
		nonce := bytes.Repeat([]byte{9}, s.AEADNonceSize())
		for _, n := range []int{0, 1, 63, 64, 65, 1000} {
			pt := bytes.Repeat([]byte{byte(n)}, n)
			ct, err := s.Seal(key, nonce, []byte("aad"), pt)
			if err != nil {
				t.Fatalf("%s: Seal: %v", s, err)
			}
			if len(ct) != n+s.AEADOverhead() {
				t.Errorf("%s: ciphertext length %d for %d bytes", s, len(ct), n)
			}
			back, err := s.Open(key, nonce, []byte("aad"), ct)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("%s: Open = %v", s, err)
			}
			ct[len(ct)/2] ^= 1
			if _, err := s.Open(key, nonce, []byte("aad"), ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%s: tampered ciphertext: %v, want ErrDecrypt", s, err)
			}
			ct[len(ct)/2] ^= 1
			if _, err := s.Open(key, nonce, []byte("AAD"), ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%s: other aad: %v, want ErrDecrypt", s, err)
			}
		}
		if _, err := s.Seal(key[1:], nonce, nil, nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: short key: %v", s, err)
		}
		if _, err := s.Open(key, nonce[1:], nil, make([]byte, 16)); !errors.Is(err, ErrInvalidLength) {
			t.Errorf("%s: short nonce: %v", s, err)
		}
		if _, err := s.Open(key, nonce, nil, []byte{1, 2}); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: ciphertext shorter than the tag: %v", s, err)
		}
	}
}

func TestSignatures(t *testing.T) {
	for _, s := range allSuites(t) {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		if p, err := s.SignaturePublicKey(priv); err != nil || !bytes.Equal(p, pub) {
			t.Errorf("%s: SignaturePublicKey mismatch: %v", s, err)
		}
		if err := s.ValidateSignaturePublicKey(pub); err != nil {
			t.Errorf("%s: ValidateSignaturePublicKey: %v", s, err)
		}
		sig, err := s.SignWithLabel(priv, "LeafNodeTBS", []byte("content"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), sig); err != nil {
			t.Errorf("%s: verify: %v", s, err)
		}
		bad := bytes.Clone(sig)
		bad[len(bad)-1] ^= 1
		if err := s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), bad); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: tampered signature: %v, want ErrVerify", s, err)
		}
		if err := s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("contenT"), sig); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: other content: %v, want ErrVerify", s, err)
		}
		_, otherPub, _ := s.GenerateSignatureKey()
		if err := s.VerifyWithLabel(otherPub, "LeafNodeTBS", []byte("content"), sig); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: other key: %v, want ErrVerify", s, err)
		}
		if err := s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), nil); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: empty signature: %v, want ErrVerify", s, err)
		}
		if err := s.VerifyWithLabel(pub[1:], "LeafNodeTBS", []byte("content"), sig); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: truncated public key: %v, want ErrInvalidKey", s, err)
		}
		if _, err := s.SignWithLabel(priv[1:len(priv)-1], "x", nil); s.sig == sigEd25519 && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: short private key: %v, want ErrInvalidKey", s, err)
		}
		if _, err := s.SignWithLabel(nil, "x", nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: empty private key: %v, want ErrInvalidKey", s, err)
		}
		g, err := s.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		sig2, err := g.SignWithLabel("x", []byte("y"))
		if err != nil || s.VerifyWithLabel(g.PublicKey(), "x", []byte("y"), sig2) != nil {
			t.Errorf("%s: Signer round trip failed: %v", s, err)
		}
	}
}

// ECDSA scalars whose leading bytes are zero may arrive without them.
func TestECDSAShortScalar(t *testing.T) {
	s, _ := Get(2)
	for range 2000 {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		if priv[0] != 0 {
			continue
		}
		p, err := s.SignaturePublicKey(priv[1:])
		if err != nil || !bytes.Equal(p, pub) {
			t.Fatalf("stripped scalar: %v", err)
		}
		return
	}
	t.Skip("no key with a leading zero byte in 2000 tries (probability ~0.0004)")
}

func TestHPKE(t *testing.T) {
	for _, s := range allSuites(t) {
		priv, pub, err := s.GenerateHPKEKey()
		if err != nil {
			t.Fatal(err)
		}
		if p, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(p, pub) {
			t.Errorf("%s: HPKEPublicKey mismatch: %v", s, err)
		}
		kem, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", []byte("ctx"), []byte("path secret"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kem, ct); err != nil || string(pt) != "path secret" {
			t.Errorf("%s: round trip: %q, %v", s, pt, err)
		}
		bad := bytes.Clone(ct)
		bad[0] ^= 1
		if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kem, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: tampered ciphertext: %v, want ErrDecrypt", s, err)
		}
		badKEM := bytes.Clone(kem)
		badKEM[len(badKEM)-1] ^= 1
		if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), badKEM, ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: tampered kem output: %v, want ErrDecrypt", s, err)
		}
		if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kem[:3], ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: truncated kem output: %v, want ErrDecrypt", s, err)
		}
		if _, err := s.DecryptWithLabel(priv, "Welcome", []byte("ctx"), kem, ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: other label: %v, want ErrDecrypt", s, err)
		}
		if _, _, err := s.EncryptWithLabel(pub[:5], "x", nil, nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: bad public key: %v, want ErrInvalidKey", s, err)
		}
		if _, err := s.DecryptWithLabel(priv[:5], "x", nil, kem, ct); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: bad private key: %v, want ErrInvalidKey", s, err)
		}

		// DeriveKeyPair is deterministic and consistent.
		ikm := bytes.Repeat([]byte{0x42}, s.Nh())
		p1, q1, err := s.DeriveHPKEKey(ikm)
		if err != nil {
			t.Fatal(err)
		}
		p2, q2, _ := s.DeriveHPKEKey(ikm)
		if !bytes.Equal(p1, p2) || !bytes.Equal(q1, q2) {
			t.Errorf("%s: DeriveHPKEKey not deterministic", s)
		}
		if q, _ := s.HPKEPublicKey(p1); !bytes.Equal(q, q1) {
			t.Errorf("%s: derived public key does not match its private key", s)
		}

		// External init (RFC 9420 §8.3).
		kemOut, secret, err := s.ExternalInitSender(q1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ExternalInitReceiver(p1, kemOut)
		if err != nil || !bytes.Equal(got, secret) || len(secret) != s.Nh() {
			t.Errorf("%s: external init secrets differ: %v", s, err)
		}
	}
}

func TestRefHelpers(t *testing.T) {
	s, _ := Get(1)
	if !bytes.Equal(s.KeyPackageRef([]byte("kp")), s.RefHash("MLS 1.0 KeyPackage Reference", []byte("kp"))) {
		t.Error("KeyPackageRef")
	}
	if !bytes.Equal(s.ProposalRef([]byte("p")), s.RefHash("MLS 1.0 Proposal Reference", []byte("p"))) {
		t.Error("ProposalRef")
	}
}

// FuzzVerifyDecrypt feeds attacker-controlled signatures, KEM outputs and
// ciphertexts to the verifying and decrypting functions: they must fail
// cleanly, never panic.
func FuzzVerifyDecrypt(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3}, []byte{4, 5, 6})
	f.Add(uint8(1), make([]byte, 65), make([]byte, 70))
	f.Add(uint8(3), make([]byte, 133), make([]byte, 16))
	suites := allSuites(f)
	type keys struct{ sigPub, hpkePriv, aeadKey []byte }
	ks := make([]keys, len(suites))
	for i, s := range suites {
		_, sp, _ := s.GenerateSignatureKey()
		hp, _, _ := s.GenerateHPKEKey()
		ks[i] = keys{sp, hp, make([]byte, s.AEADKeySize())}
	}
	f.Fuzz(func(t *testing.T, which uint8, a, b []byte) {
		i := int(which) % len(suites)
		s := suites[i]
		if s.VerifyWithLabel(ks[i].sigPub, "x", b, a) == nil {
			t.Fatal("random signature verified")
		}
		_ = s.VerifyWithLabel(a, "x", nil, b)
		if _, err := s.DecryptWithLabel(ks[i].hpkePriv, "x", nil, a, b); err == nil {
			t.Fatal("random HPKE ciphertext decrypted")
		}
		if _, err := s.Open(ks[i].aeadKey, make([]byte, 12), nil, a); err == nil {
			t.Fatal("random AEAD ciphertext opened")
		}
		_, _, _ = s.EncryptWithLabel(a, "x", nil, b)
		_, _ = s.HPKEPublicKey(a)
		_, _ = s.SignaturePublicKey(a)
	})
}

// hmacAppend must equal crypto/hmac for every key and message length,
// across the stack and streaming paths and keys longer than a block.
func TestHMACMatchesStdlib(t *testing.T) {
	for _, s := range allSuites(t) {
		for _, kl := range []int{0, 1, 31, 32, 48, 64, 65, 127, 128, 129, 200} {
			key := bytes.Repeat([]byte{byte(kl) + 1}, kl)
			for ml := 0; ml <= hmacStackMsg+70; ml += 7 {
				msg := make([]byte, ml)
				for i := range msg {
					msg[i] = byte(i * 13)
				}
				m := hmac.New(s.newHash, key)
				m.Write(msg)
				want := m.Sum(nil)
				third := ml / 3
				got := s.hmacAppend([]byte{0xee}, key, msg[:third], msg[third:2*third], msg[2*third:])
				if got[0] != 0xee || !bytes.Equal(got[1:], want) {
					t.Fatalf("%s: key %d bytes, msg %d bytes: HMAC mismatch", s, kl, ml)
				}
				if !bytes.Equal(s.MAC(key, msg), want) {
					t.Fatalf("%s: MAC mismatch", s)
				}
			}
		}
	}
}

// NIST-curve HPKE private keys serialized without their leading zero bytes
// (as some P-521 test vectors are, at 65 bytes) import as the same key;
// X25519 keys, which are not big-endian numbers, only at their exact size.
func TestHPKEShortPrivateKey(t *testing.T) {
	for _, s := range allSuites(t) {
		if s.nistPrivSz == 0 {
			priv, _, _ := s.GenerateHPKEKey()
			if _, err := s.HPKEPublicKey(priv[1:]); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%s: short X25519 key: %v, want ErrInvalidKey", s, err)
			}
			continue
		}
		if _, err := s.HPKEPublicKey(nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: empty key: %v, want ErrInvalidKey", s, err)
		}
		found := false
		for i := range 4096 { // deterministic: the first ikm whose key starts with a zero byte
			priv, pub, err := s.DeriveHPKEKey([]byte{byte(i >> 8), byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) != s.nistPrivSz {
				t.Fatalf("%s: serialized key of %d bytes, want %d", s, len(priv), s.nistPrivSz)
			}
			if priv[0] != 0 {
				continue
			}
			found = true
			short := priv[1:]
			if p, err := s.HPKEPublicKey(short); err != nil || !bytes.Equal(p, pub) {
				t.Errorf("%s: %d-byte key: public key mismatch: %v", s, len(short), err)
			}
			kem, ct, err := s.EncryptWithLabel(pub, "Welcome", nil, []byte("secret"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := s.DecryptWithLabel(short, "Welcome", nil, kem, ct); err != nil || string(pt) != "secret" {
				t.Errorf("%s: decrypt with the %d-byte key: %q, %v", s, len(short), pt, err)
			}
			if len(priv) == 1+len(short) && short[0] == 0 { // also two bytes shorter
				if p, err := s.HPKEPublicKey(short[1:]); err != nil || !bytes.Equal(p, pub) {
					t.Errorf("%s: doubly short key: %v", s, err)
				}
			}
			break
		}
		if !found {
			t.Fatalf("%s: no derived key with a leading zero byte", s)
		}
		// Too long is still refused.
		priv, _, _ := s.GenerateHPKEKey()
		if _, err := s.HPKEPublicKey(append([]byte{0}, priv...)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: over-long key: %v, want ErrInvalidKey", s, err)
		}
	}
}

// A NIST-curve HPKE key more than maxStrippedZeros bytes short is taken as
// truncated.
func TestHPKETruncatedPrivateKey(t *testing.T) {
	for _, id := range []ID{2, 5, 7} {
		s, _ := Get(id)
		priv, _, _ := s.GenerateHPKEKey()
		if _, err := s.HPKEPublicKey(priv[:len(priv)-maxStrippedZeros-1]); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: key %d bytes short: %v, want ErrInvalidKey", s, maxStrippedZeros+1, err)
		}
	}
}
