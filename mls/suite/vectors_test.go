package suite

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
)

type cryptoBasics struct {
	CipherSuite ID `json:"cipher_suite"`
	RefHash     struct {
		Label string      `json:"label"`
		Value testvec.Hex `json:"value"`
		Out   testvec.Hex `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  testvec.Hex `json:"secret"`
		Label   string      `json:"label"`
		Context testvec.Hex `json:"context"`
		Length  int         `json:"length"`
		Out     testvec.Hex `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret testvec.Hex `json:"secret"`
		Label  string      `json:"label"`
		Out    testvec.Hex `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     testvec.Hex `json:"secret"`
		Label      string      `json:"label"`
		Generation uint32      `json:"generation"`
		Length     int         `json:"length"`
		Out        testvec.Hex `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      testvec.Hex `json:"priv"`
		Pub       testvec.Hex `json:"pub"`
		Content   testvec.Hex `json:"content"`
		Label     string      `json:"label"`
		Signature testvec.Hex `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       testvec.Hex `json:"priv"`
		Pub        testvec.Hex `json:"pub"`
		Label      string      `json:"label"`
		Context    testvec.Hex `json:"context"`
		Plaintext  testvec.Hex `json:"plaintext"`
		KEMOutput  testvec.Hex `json:"kem_output"`
		Ciphertext testvec.Hex `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

func TestCryptoBasicsVectors(t *testing.T) {
	var vs []cryptoBasics
	testvec.Load(t, "crypto-basics.json", &vs)
	c := testvec.Counter{File: "crypto-basics.json"}
	for _, v := range vs {
		s, err := Get(v.CipherSuite)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("suite %d: %v", v.CipherSuite, err)
			}
			c.Skip("X448/Ed448 suite unsupported")
			continue
		}
		if t.Run(v.CipherSuite.String(), func(t *testing.T) { checkCryptoBasics(t, s, &v) }) {
			c.Passed++
		}
	}
	if c.Passed != 5 {
		t.Errorf("passed %d entries, want 5 (suites 1,2,3,5,7)", c.Passed)
	}
	c.Report(t)
}

func checkCryptoBasics(t *testing.T, s *Suite, v *cryptoBasics) {
	if got := s.RefHash(v.RefHash.Label, v.RefHash.Value); !bytes.Equal(got, v.RefHash.Out) {
		t.Errorf("RefHash = %x, want %x", got, []byte(v.RefHash.Out))
	}
	e := v.ExpandWithLabel
	if got := s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length); !bytes.Equal(got, e.Out) {
		t.Errorf("ExpandWithLabel = %x, want %x", got, []byte(e.Out))
	}
	d := v.DeriveSecret
	if got := s.DeriveSecret(d.Secret, d.Label); !bytes.Equal(got, d.Out) {
		t.Errorf("DeriveSecret = %x, want %x", got, []byte(d.Out))
	}
	dt := v.DeriveTreeSecret
	if got := s.DeriveTreeSecret(dt.Secret, dt.Label, dt.Generation, dt.Length); !bytes.Equal(got, dt.Out) {
		t.Errorf("DeriveTreeSecret = %x, want %x", got, []byte(dt.Out))
	}

	sg := v.SignWithLabel
	if pub, err := s.SignaturePublicKey(sg.Priv); err != nil || !bytes.Equal(pub, sg.Pub) {
		t.Errorf("SignaturePublicKey = %x, %v; want %x", pub, err, []byte(sg.Pub))
	}
	if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sg.Signature); err != nil {
		t.Errorf("VerifyWithLabel(given signature): %v", err)
	}
	sig, err := s.SignWithLabel(sg.Priv, sg.Label, sg.Content)
	if err != nil {
		t.Fatalf("SignWithLabel: %v", err)
	}
	if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sig); err != nil {
		t.Errorf("VerifyWithLabel(own signature): %v", err)
	}
	if err := s.VerifyWithLabel(sg.Pub, sg.Label+"x", sg.Content, sg.Signature); !errors.Is(err, ErrVerify) {
		t.Errorf("VerifyWithLabel(other label) = %v, want ErrVerify", err)
	}

	h := v.EncryptWithLabel
	if pub, err := s.HPKEPublicKey(h.Priv); err != nil || !bytes.Equal(pub, h.Pub) {
		t.Errorf("HPKEPublicKey = %x, %v; want %x", pub, err, []byte(h.Pub))
	}
	pt, err := s.DecryptWithLabel(h.Priv, h.Label, h.Context, h.KEMOutput, h.Ciphertext)
	if err != nil || !bytes.Equal(pt, h.Plaintext) {
		t.Errorf("DecryptWithLabel(given) = %x, %v; want %x", pt, err, []byte(h.Plaintext))
	}
	kem, ct, err := s.EncryptWithLabel(h.Pub, h.Label, h.Context, h.Plaintext)
	if err != nil {
		t.Fatalf("EncryptWithLabel: %v", err)
	}
	pt, err = s.DecryptWithLabel(h.Priv, h.Label, h.Context, kem, ct)
	if err != nil || !bytes.Equal(pt, h.Plaintext) {
		t.Errorf("DecryptWithLabel(round trip) = %x, %v; want %x", pt, err, []byte(h.Plaintext))
	}
	if _, err := s.DecryptWithLabel(h.Priv, h.Label, append([]byte{1}, h.Context...), h.KEMOutput, h.Ciphertext); !errors.Is(err, ErrDecrypt) {
		t.Errorf("DecryptWithLabel(other context) = %v, want ErrDecrypt", err)
	}
}
