package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
)

type passiveVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID testvec.Hex `json:"psk_id"`
		PSK   testvec.Hex `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                testvec.Hex `json:"key_package"`
	SignaturePriv             testvec.Hex `json:"signature_priv"`
	EncryptionPriv            testvec.Hex `json:"encryption_priv"`
	InitPriv                  testvec.Hex `json:"init_priv"`
	Welcome                   testvec.Hex `json:"welcome"`
	RatchetTree               testvec.Hex `json:"ratchet_tree"`
	InitialEpochAuthenticator testvec.Hex `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []testvec.Hex `json:"proposals"`
		Commit             testvec.Hex   `json:"commit"`
		EpochAuthenticator testvec.Hex   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

// runPassive joins from the vector's Welcome and follows its epochs.
func runPassive(t *testing.T, v *passiveVector) {
	t.Helper()
	kp, err := decodeKeyPackage(v.KeyPackage)
	if err != nil {
		t.Fatalf("key package: %v", err)
	}
	opts := []Option{WithoutLifetimeCheck()}
	for _, p := range v.ExternalPSKs {
		opts = append(opts, WithExternalPSK(p.PSKID, p.PSK))
	}
	if v.RatchetTree != nil {
		opts = append(opts, WithRatchetTree(v.RatchetTree))
	}
	kpb := &KeyPackageBundle{KeyPackage: kp, InitPriv: v.InitPriv, EncryptionPriv: v.EncryptionPriv, SignaturePriv: v.SignaturePriv}
	g, err := Join(v.Welcome, kpb, opts...)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), v.InitialEpochAuthenticator) {
		t.Fatalf("initial epoch authenticator mismatch")
	}
	for i, e := range v.Epochs {
		for j, p := range e.Proposals {
			if _, err := g.ProcessMessage(p); err != nil {
				t.Fatalf("epoch %d proposal %d: %v", i, j, err)
			}
		}
		if _, err := g.ProcessMessage(e.Commit); err != nil {
			t.Fatalf("epoch %d commit: %v", i, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), e.EpochAuthenticator) {
			t.Fatalf("epoch %d: epoch authenticator mismatch", i)
		}
	}
}

func runPassiveFile(t *testing.T, file string) {
	var vs []passiveVector
	testvec.Load(t, file, &vs)
	c := testvec.Counter{File: file}
	for i := range vs {
		v := &vs[i]
		if vecsuite.ForHeavy(t, &c, v.CipherSuite) == nil {
			continue
		}
		if t.Run(fmt.Sprintf("%d-suite%d", i, v.CipherSuite), func(t *testing.T) { runPassive(t, v) }) {
			c.Passed++
		}
	}
	c.Report(t)
}

func TestPassiveClientWelcome(t *testing.T) { runPassiveFile(t, "passive-client-welcome.json") }
func TestPassiveClientHandlingCommit(t *testing.T) {
	runPassiveFile(t, "passive-client-handling-commit.json")
}
func TestPassiveClientRandom(t *testing.T) { runPassiveFile(t, "passive-client-random.json") }

func TestInteropPassive(t *testing.T) {
	for _, f := range []string{"welcome_join", "application", "commit", "external_join", "external_proposals", "reinit", "branch"} {
		t.Run(f, func(t *testing.T) { runPassiveFile(t, "interop-passive/"+f+".json") })
	}
}
