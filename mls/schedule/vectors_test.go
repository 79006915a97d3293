package schedule

import (
	"bytes"
	"testing"

	"github.com/agwproject/agw/mls/codec"
	"github.com/agwproject/agw/mls/internal/testvec"
	"github.com/agwproject/agw/mls/internal/vecsuite"
	"github.com/agwproject/agw/mls/suite"
)

func eq(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// encodeGroupContext encodes GroupContext (RFC 9420 §8.1) with no
// extensions, for the key-schedule vectors.
func encodeGroupContext(s *suite.Suite, groupID []byte, epoch uint64, treeHash, confirmed []byte) []byte {
	w := codec.NewWriter(64)
	w.U16(1) // mls10
	w.U16(uint16(s.ID()))
	w.Opaque(groupID)
	w.U64(epoch)
	w.Opaque(treeHash)
	w.Opaque(confirmed)
	w.Vector(func(*codec.Writer) {}) // extensions
	return w.MustBytes()
}

type keyScheduleVector struct {
	CipherSuite       uint16      `json:"cipher_suite"`
	GroupID           testvec.Hex `json:"group_id"`
	InitialInitSecret testvec.Hex `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                testvec.Hex `json:"tree_hash"`
		CommitSecret            testvec.Hex `json:"commit_secret"`
		PSKSecret               testvec.Hex `json:"psk_secret"`
		ConfirmedTranscriptHash testvec.Hex `json:"confirmed_transcript_hash"`
		GroupContext            testvec.Hex `json:"group_context"`
		JoinerSecret            testvec.Hex `json:"joiner_secret"`
		WelcomeSecret           testvec.Hex `json:"welcome_secret"`
		InitSecret              testvec.Hex `json:"init_secret"`
		SenderDataSecret        testvec.Hex `json:"sender_data_secret"`
		EncryptionSecret        testvec.Hex `json:"encryption_secret"`
		ExporterSecret          testvec.Hex `json:"exporter_secret"`
		EpochAuthenticator      testvec.Hex `json:"epoch_authenticator"`
		ExternalSecret          testvec.Hex `json:"external_secret"`
		ConfirmationKey         testvec.Hex `json:"confirmation_key"`
		MembershipKey           testvec.Hex `json:"membership_key"`
		ResumptionPSK           testvec.Hex `json:"resumption_psk"`
		ExternalPub             testvec.Hex `json:"external_pub"`
		Exporter                struct {
			// The label is a JSON string used verbatim as the exporter
			// label (it happens to be hex digits; it is not decoded).
			Label   string      `json:"label"`
			Context testvec.Hex `json:"context"`
			Length  int         `json:"length"`
			Secret  testvec.Hex `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

func TestKeyScheduleVectors(t *testing.T) {
	var vs []keyScheduleVector
	testvec.Load(t, "key-schedule.json", &vs)
	c := testvec.Counter{File: "key-schedule.json"}
	for _, v := range vs {
		s := vecsuite.For(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		ok := t.Run(s.ID().String(), func(t *testing.T) {
			if len(v.Epochs) != 5 {
				t.Fatalf("%d epochs, want 5", len(v.Epochs))
			}
			init := []byte(v.InitialInitSecret)
			for i, e := range v.Epochs {
				gc := encodeGroupContext(s, v.GroupID, uint64(i), e.TreeHash, e.ConfirmedTranscriptHash)
				eq(t, "group_context", gc, e.GroupContext)
				sec, err := Advance(s, init, e.CommitSecret, e.PSKSecret, gc)
				if err != nil {
					t.Fatalf("epoch %d: %v", i, err)
				}
				eq(t, "joiner_secret", sec.JoinerSecret, e.JoinerSecret)
				eq(t, "welcome_secret", sec.WelcomeSecret, e.WelcomeSecret)
				eq(t, "init_secret", sec.InitSecret, e.InitSecret)
				eq(t, "sender_data_secret", sec.SenderDataSecret, e.SenderDataSecret)
				eq(t, "encryption_secret", sec.EncryptionSecret, e.EncryptionSecret)
				eq(t, "exporter_secret", sec.ExporterSecret, e.ExporterSecret)
				eq(t, "epoch_authenticator", sec.EpochAuthenticator, e.EpochAuthenticator)
				eq(t, "external_secret", sec.ExternalSecret, e.ExternalSecret)
				eq(t, "confirmation_key", sec.ConfirmationKey, e.ConfirmationKey)
				eq(t, "membership_key", sec.MembershipKey, e.MembershipKey)
				eq(t, "resumption_psk", sec.ResumptionPSK, e.ResumptionPSK)
				_, pub, err := sec.ExternalKeyPair()
				if err != nil {
					t.Fatalf("epoch %d: external key pair: %v", i, err)
				}
				eq(t, "external_pub", pub, e.ExternalPub)
				out, err := sec.Export(e.Exporter.Label, e.Exporter.Context, e.Exporter.Length)
				if err != nil {
					t.Fatal(err)
				}
				eq(t, "exporter output", out, e.Exporter.Secret)

				// The joiner's path gives the same epoch.
				w, err := WelcomeSecret(s, sec.JoinerSecret, e.PSKSecret)
				if err != nil {
					t.Fatal(err)
				}
				eq(t, "WelcomeSecret", w, e.WelcomeSecret)
				j, err := FromJoinerSecret(s, e.JoinerSecret, e.PSKSecret, gc)
				if err != nil {
					t.Fatal(err)
				}
				eq(t, "joiner path epoch_authenticator", j.EpochAuthenticator, e.EpochAuthenticator)
				init = sec.InitSecret
			}
		})
		if ok {
			c.Passed++
		}
	}
	if c.Passed != 5 {
		t.Errorf("passed %d entries, want 5", c.Passed)
	}
	c.Report(t)
}

type pskVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    testvec.Hex `json:"psk_id"`
		PSK      testvec.Hex `json:"psk"`
		PSKNonce testvec.Hex `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret testvec.Hex `json:"psk_secret"`
}

func TestPSKSecretVectors(t *testing.T) {
	var vs []pskVector
	testvec.Load(t, "psk_secret.json", &vs)
	c := testvec.Counter{File: "psk_secret.json"}
	for i, v := range vs {
		s := vecsuite.For(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		psks := make([]PSK, len(v.PSKs))
		for j, p := range v.PSKs {
			psks[j] = PSK{ID: ExternalPSKID(p.PSKID, p.PSKNonce), Secret: p.PSK}
		}
		got, err := PSKSecret(s, psks)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !bytes.Equal(got, v.PSKSecret) {
			t.Errorf("entry %d (suite %d, %d PSKs): psk_secret %x, want %x", i, v.CipherSuite, len(psks), got, []byte(v.PSKSecret))
			continue
		}
		c.Passed++
	}
	if c.Passed != 55 {
		t.Errorf("passed %d entries, want 55 (11 per supported suite)", c.Passed)
	}
	c.Report(t)
}

type secretTreeVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret testvec.Hex `json:"sender_data_secret"`
		Ciphertext       testvec.Hex `json:"ciphertext"`
		Key              testvec.Hex `json:"key"`
		Nonce            testvec.Hex `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret testvec.Hex `json:"encryption_secret"`
	Leaves           [][]struct {
		Generation       uint32      `json:"generation"`
		HandshakeKey     testvec.Hex `json:"handshake_key"`
		HandshakeNonce   testvec.Hex `json:"handshake_nonce"`
		ApplicationKey   testvec.Hex `json:"application_key"`
		ApplicationNonce testvec.Hex `json:"application_nonce"`
	} `json:"leaves"`
}

func TestSecretTreeVectors(t *testing.T) {
	var vs []secretTreeVector
	testvec.Load(t, "secret-tree.json", &vs)
	c := testvec.Counter{File: "secret-tree.json"}
	for i, v := range vs {
		s := vecsuite.For(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		ok := t.Run("", func(t *testing.T) {
			sd := v.SenderData
			key, nonce := SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
			eq(t, "sender data key", key, sd.Key)
			eq(t, "sender data nonce", nonce, sd.Nonce)

			n := uint32(len(v.Leaves))
			// Forward leaf order with Get, then reverse order (a different
			// lazy derivation order) with Next for the first generation.
			for pass := range 2 {
				tree, err := NewSecretTree(s, v.EncryptionSecret, n)
				if err != nil {
					t.Fatal(err)
				}
				for k := range n {
					leaf := k
					if pass == 1 {
						leaf = n - 1 - k
					}
					for j, g := range v.Leaves[leaf] {
						var hs, app Key
						var err1, err2 error
						if pass == 1 && j == 0 {
							hs, err1 = tree.Next(leaf, Handshake)
							app, err2 = tree.Next(leaf, Application)
						} else {
							hs, err1 = tree.Get(leaf, Handshake, g.Generation)
							app, err2 = tree.Get(leaf, Application, g.Generation)
						}
						if err1 != nil || err2 != nil {
							t.Fatalf("leaf %d generation %d: %v %v", leaf, g.Generation, err1, err2)
						}
						if hs.Generation != g.Generation || app.Generation != g.Generation {
							t.Errorf("leaf %d: generations %d/%d, want %d", leaf, hs.Generation, app.Generation, g.Generation)
						}
						eq(t, "handshake key", hs.Key, g.HandshakeKey)
						eq(t, "handshake nonce", hs.Nonce, g.HandshakeNonce)
						eq(t, "application key", app.Key, g.ApplicationKey)
						eq(t, "application nonce", app.Nonce, g.ApplicationNonce)
					}
				}
				if len(tree.nodes) != 0 {
					t.Errorf("%d node secrets left after every leaf was used", len(tree.nodes))
				}
			}
		})
		if !ok {
			t.Errorf("entry %d (suite %d, %d leaves) failed", i, v.CipherSuite, len(v.Leaves))
			continue
		}
		c.Passed++
	}
	if c.Passed != 15 {
		t.Errorf("passed %d entries, want 15", c.Passed)
	}
	c.Report(t)
}

type transcriptVector struct {
	CipherSuite                  uint16      `json:"cipher_suite"`
	ConfirmationKey              testvec.Hex `json:"confirmation_key"`
	AuthenticatedContent         testvec.Hex `json:"authenticated_content"`
	InterimTranscriptHashBefore  testvec.Hex `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter testvec.Hex `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   testvec.Hex `json:"interim_transcript_hash_after"`
}

// splitConfirmationTag splits an encoded AuthenticatedContent of a commit
// into ConfirmedTranscriptHashInput (everything up to and including the
// signature) and the confirmation tag, the final opaque<V> of
// FramedContentAuthData, whose length is the suite's MAC length Nh.
func splitConfirmationTag(t *testing.T, s *suite.Suite, ac []byte) (input, tag []byte) {
	t.Helper()
	hdr := codec.VarintLen(s.Nh())
	if len(ac) < hdr+s.Nh() {
		t.Fatalf("authenticated_content too short: %d bytes", len(ac))
	}
	start := len(ac) - s.Nh() - hdr
	n, used, err := codec.ReadVarint(ac[start:])
	if err != nil || n != s.Nh() || used != hdr {
		t.Fatalf("authenticated_content does not end with an opaque<V> of %d bytes (header %x)", s.Nh(), ac[start:start+hdr])
	}
	return ac[:start], ac[start+hdr:]
}

func TestTranscriptHashVectors(t *testing.T) {
	var vs []transcriptVector
	testvec.Load(t, "transcript-hashes.json", &vs)
	c := testvec.Counter{File: "transcript-hashes.json"}
	for _, v := range vs {
		s := vecsuite.For(t, &c, v.CipherSuite)
		if s == nil {
			continue
		}
		ok := t.Run(s.ID().String(), func(t *testing.T) {
			input, tag := splitConfirmationTag(t, s, v.AuthenticatedContent)
			confirmed := ConfirmedTranscriptHash(s, v.InterimTranscriptHashBefore, input)
			eq(t, "confirmed_transcript_hash", confirmed, v.ConfirmedTranscriptHashAfter)
			if !VerifyConfirmationTag(s, v.ConfirmationKey, confirmed, tag) {
				t.Errorf("confirmation tag %x does not verify", tag)
			}
			eq(t, "ConfirmationTag", ConfirmationTag(s, v.ConfirmationKey, confirmed), tag)
			eq(t, "interim_transcript_hash", InterimTranscriptHash(s, confirmed, tag), v.InterimTranscriptHashAfter)
			bad := bytes.Clone(tag)
			bad[0] ^= 1
			if VerifyConfirmationTag(s, v.ConfirmationKey, confirmed, bad) {
				t.Error("tampered confirmation tag verified")
			}
		})
		if ok {
			c.Passed++
		}
	}
	if c.Passed != 5 {
		t.Errorf("passed %d entries, want 5", c.Passed)
	}
	c.Report(t)
}
