package mlsinterop

import (
	"errors"
	"testing"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/wire"
)

// The driver works around two places where ts-mls 1.6.4 deviates from
// RFC 9420 (see driver.mjs). These tests pin both deviations with ts-mls's
// native behaviour ("native": true) and check that Go refuses the
// non-conforming encodings rather than guessing. If ts-mls fixes one, its
// test fails and the workaround in driver.mjs can go.

// RFC 9420 §5.1.1: an ECDSA SignaturePublicKey is an
// UncompressedPointRepresentation. ts-mls puts a compressed P-256 point in
// its LeafNodes.
func TestDeviationCompressedECDSAKey(t *testing.T) {
	d := startDriver(t)
	native := call(t, d, "keypackage", map[string]any{"name": "native", "suite": 2, "native": true}).KeyPackage
	var msg wire.MLSMessage
	if err := wire.Decode(native, &msg); err != nil || msg.KeyPackage == nil {
		t.Fatalf("decode ts-mls KeyPackage: %v", err)
	}
	key := msg.KeyPackage.LeafNode.SignatureKey
	if len(key) != 33 || (key[0] != 2 && key[0] != 3) {
		t.Fatalf("ts-mls native P-256 signature key is %d bytes (prefix %#x); the compressed-point deviation is gone", len(key), key[0])
	}
	if err := mls.ValidateKeyPackage(native); !errors.Is(err, mls.ErrInvalidKeyPackage) {
		t.Fatalf("Go on a KeyPackage with a compressed ECDSA key: %v, want ErrInvalidKeyPackage", err)
	}
	fixed := call(t, d, "keypackage", map[string]any{"name": "fixed", "suite": 2}).KeyPackage
	if err := mls.ValidateKeyPackage(fixed); err != nil {
		t.Fatalf("Go on the driver's RFC-conforming ts-mls KeyPackage: %v", err)
	}
}

// RFC 9420 §12.4.3.2: the external_pub extension body is
// struct { HPKEPublicKey external_pub; } with HPKEPublicKey = opaque<V>.
// ts-mls writes (and reads) the bare key.
func TestDeviationBareExternalPub(t *testing.T) {
	d := startDriver(t)
	call(t, d, "create", map[string]any{"name": "alice", "suite": 1, "groupId": []byte("deviation")})
	gi := call(t, d, "groupInfo", map[string]any{"name": "alice", "native": true}).GroupInfo
	var msg wire.MLSMessage
	if err := wire.Decode(gi, &msg); err != nil || msg.GroupInfo == nil {
		t.Fatalf("decode ts-mls GroupInfo: %v", err)
	}
	var body []byte
	for _, e := range msg.GroupInfo.Extensions {
		if e.Type == wire.ExtensionTypeExternalPub {
			body = e.Data
		}
	}
	if len(body) != 32 {
		t.Fatalf("ts-mls native external_pub body is %d bytes, want the bare 32-byte X25519 key; the deviation is gone", len(body))
	}
	if _, _, err := mls.JoinExternal(gi, mls.BasicCredential([]byte("bob"))); !errors.Is(err, mls.ErrMalformed) {
		t.Fatalf("Go on a GroupInfo with a bare external_pub: %v, want ErrMalformed", err)
	}

	// The other direction: ts-mls reading Go's conforming extension.
	g, err := mls.NewGroup(1, mls.BasicCredential([]byte("carol")))
	if err != nil {
		t.Fatal(err)
	}
	goGI, err := g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tryCall(d, "joinExternal", map[string]any{"name": "dave", "suite": 1, "groupInfo": goGI, "native": true}); !errors.Is(err, ErrDriver) {
		t.Fatalf("native ts-mls external join from Go's GroupInfo: %v, want a ts-mls error", err)
	}
}
