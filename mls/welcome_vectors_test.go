package mls

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
	"github.com/agwproject/agw/mls/schedule"
	"github.com/agwproject/agw/mls/wire"
)

func TestWelcomeVectors(t *testing.T) {
	var vs []struct {
		CipherSuite uint16      `json:"cipher_suite"`
		InitPriv    testvec.Hex `json:"init_priv"`
		KeyPackage  testvec.Hex `json:"key_package"`
		SignerPub   testvec.Hex `json:"signer_pub"`
		Welcome     testvec.Hex `json:"welcome"`
	}
	testvec.Load(t, "welcome.json", &vs)
	c := testvec.Counter{File: "welcome.json"}
	for i, v := range vs {
		s := vecsuite.ForHeavy(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		ok := t.Run(fmt.Sprintf("%d-suite%d", i, v.CipherSuite), func(t *testing.T) {
			kp, err := decodeKeyPackage(v.KeyPackage)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeMessage(v.Welcome)
			if err != nil || m.WireFormat != wire.WireFormatWelcome {
				t.Fatalf("welcome: %v", err)
			}
			cfg := newConfig(nil)
			_, gs, psk, gi, err := openWelcome(m.Welcome, &KeyPackageBundle{KeyPackage: kp, InitPriv: v.InitPriv}, &cfg)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := s.VerifyWithLabel(v.SignerPub, labelGroupInfo, gi.TBS(), gi.Signature); err != nil {
				t.Fatalf("group info signature: %v", err)
			}
			sec, err := joinEpoch(s, gs.JoinerSecret, psk, wire.Encode(&gi.GroupContext))
			if err != nil {
				t.Fatal(err)
			}
			if !schedule.VerifyConfirmationTag(s, sec.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
				t.Fatal("confirmation tag mismatch")
			}
			// A wrong init key finds the secrets but cannot open them.
			_, other, _ := s.GenerateHPKEKey()
			if _, _, _, _, err := openWelcome(m.Welcome, &KeyPackageBundle{KeyPackage: kp, InitPriv: other}, &cfg); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong init key: %v", err)
			}
		})
		if ok {
			c.Passed++
		}
	}
	c.Report(t)
}
