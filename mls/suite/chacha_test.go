package suite

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 8439 §2.8.2.
func TestChaCha20Poly1305RFC8439(t *testing.T) {
	key := unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := unhex(t, "070000004041424344454647")
	aad := unhex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := unhex(t, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"+
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"+
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"+
		"3ff4def08e4b7a9de576d26586cec64b6116"+"1ae10b594f09e26a7e902ecbd0600691")
	a, err := newChaCha20Poly1305(key)
	if err != nil {
		t.Fatal(err)
	}
	got := a.Seal(nil, nonce, pt, aad)
	if !bytes.Equal(got, want) {
		t.Fatalf("Seal = %x\nwant  %x", got, want)
	}
	back, err := a.Open(nil, nonce, got, aad)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("Open = %q, %v", back, err)
	}
	for i := range got {
		bad := bytes.Clone(got)
		bad[i] ^= 0x80
		if _, err := a.Open(nil, nonce, bad, aad); err == nil {
			t.Fatalf("Open accepted ciphertext with byte %d flipped", i)
		}
	}
	if _, err := a.Open(nil, nonce, got[:15], aad); err == nil {
		t.Fatal("Open accepted a short ciphertext")
	}
}

// RFC 8439 §2.5.2.
func TestPoly1305RFC8439(t *testing.T) {
	key := unhex(t, "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
	var p poly1305
	p.init(key)
	p.write([]byte("Cryptographic Forum Research Group"))
	var tag [16]byte
	p.finish(&tag)
	if want := unhex(t, "a8061dc1305136c6c22b8baf0c0127a9"); !bytes.Equal(tag[:], want) {
		t.Fatalf("tag = %x, want %x", tag, want)
	}
}

// poly1305Ref is RFC 8439 §2.5.1 written with math/big.
func poly1305Ref(key, msg []byte) []byte {
	le := func(b []byte) *big.Int {
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	rb := bytes.Clone(key[:16])
	for _, i := range []int{3, 7, 11, 15} {
		rb[i] &= 15
	}
	for _, i := range []int{4, 8, 12} {
		rb[i] &= 252
	}
	r, s := le(rb), le(key[16:])
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 130), big.NewInt(5))
	acc := new(big.Int)
	for len(msg) > 0 {
		n := min(16, len(msg))
		blk := append(bytes.Clone(msg[:n]), 1)
		acc.Add(acc, le(blk))
		acc.Mul(acc, r)
		acc.Mod(acc, p)
		msg = msg[n:]
	}
	acc.Add(acc, s)
	out := make([]byte, 16)
	b := acc.Bytes()
	for i := 0; i < 16 && i < len(b); i++ {
		out[i] = b[len(b)-1-i]
	}
	return out
}

// Differential test against the big-integer reference, including the
// extreme limb values that stress the carries and the final reduction.
func TestPoly1305MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte, mode int) {
		for i := range b {
			switch mode {
			case 0:
				b[i] = byte(rng.Uint32())
			case 1:
				b[i] = 0xff
			case 2:
				b[i] = 0
			}
		}
	}
	for i := range 3000 {
		key := make([]byte, 32)
		msg := make([]byte, rng.IntN(200))
		fill(key, i%3)
		fill(msg, (i/3)%3)
		if i%7 == 0 {
			fill(key[16:], 1)
		}
		var p poly1305
		p.init(key)
		p.write(msg)
		var tag [16]byte
		p.finish(&tag)
		if want := poly1305Ref(key, msg); !bytes.Equal(tag[:], want) {
			t.Fatalf("case %d: key %x msg %x: tag %x, want %x", i, key, msg, tag, want)
		}
	}
}

// Suite 3's HPKE runs Go's own ChaCha20-Poly1305; recomputing the HPKE key
// schedule (RFC 9180 §4.1, §5.1) by hand and opening the crypto-basics
// ciphertext with this package's ChaCha20-Poly1305 checks one against the
// other.
func TestChaChaAgainstHPKEVector(t *testing.T) {
	var vs []cryptoBasics
	testvec.Load(t, "crypto-basics.json", &vs)
	s, _ := Get(3)
	for _, v := range vs {
		if v.CipherSuite != 3 {
			continue
		}
		h := v.EncryptWithLabel
		labeledExtract := func(suiteID []byte, salt []byte, label string, ikm []byte) []byte {
			in := append(append(append([]byte("HPKE-v1"), suiteID...), label...), ikm...)
			return s.Extract(salt, in)
		}
		labeledExpand := func(suiteID []byte, prk []byte, label string, info []byte, n int) []byte {
			in := append(append(append(append([]byte{byte(n >> 8), byte(n)}, "HPKE-v1"...), suiteID...), label...), info...)
			return s.Expand(prk, in, n)
		}
		sk, err := ecdh.X25519().NewPrivateKey(h.Priv)
		if err != nil {
			t.Fatal(err)
		}
		pkE, err := ecdh.X25519().NewPublicKey(h.KEMOutput)
		if err != nil {
			t.Fatal(err)
		}
		dh, err := sk.ECDH(pkE)
		if err != nil {
			t.Fatal(err)
		}
		kemID := []byte{'K', 'E', 'M', 0, 0x20}
		eae := labeledExtract(kemID, nil, "eae_prk", dh)
		shared := labeledExpand(kemID, eae, "shared_secret", append(bytes.Clone(h.KEMOutput), h.Pub...), 32)
		hpkeID := []byte{'H', 'P', 'K', 'E', 0, 0x20, 0, 1, 0, 3}
		info := encryptContext(h.Label, h.Context)
		ks := append([]byte{0}, labeledExtract(hpkeID, nil, "psk_id_hash", nil)...)
		ks = append(ks, labeledExtract(hpkeID, nil, "info_hash", info)...)
		secret := labeledExtract(hpkeID, shared, "secret", nil)
		key := labeledExpand(hpkeID, secret, "key", ks, 32)
		nonce := labeledExpand(hpkeID, secret, "base_nonce", ks, 12)
		pt, err := s.Open(key, nonce, nil, h.Ciphertext)
		if err != nil || !bytes.Equal(pt, h.Plaintext) {
			t.Fatalf("Open with hand-derived HPKE key = %x, %v; want %x", pt, err, []byte(h.Plaintext))
		}
		ct, err := s.Seal(key, nonce, nil, h.Plaintext)
		if err != nil || !bytes.Equal(ct, h.Ciphertext) {
			t.Fatalf("Seal = %x, %v; want %x", ct, err, []byte(h.Ciphertext))
		}
		return
	}
	t.Fatal("no suite 3 entry in crypto-basics.json")
}
