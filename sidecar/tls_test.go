package sidecar_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
)

// testPKI writes a CA and one certificate per name (valid for 127.0.0.1)
// to dir and returns the CA file.
func testPKI(t *testing.T, dir string, names ...string) (caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agw test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caFile = filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", caDER)
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{name},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", kder)
	}
	return caFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tlsConfig(id, dir, ca string) sidecar.Config {
	c := sidecartest.Config(id)
	c.TLSCertFile = filepath.Join(dir, id+".pem")
	c.TLSKeyFile = filepath.Join(dir, id+".key")
	c.TLSCAFile = ca
	return c
}

func TestMutualTLSPeerLink(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	ca := testPKI(t, dir, "a", "b", "rogue")
	// The rogue's certificate is from a different CA.
	rogueDir := t.TempDir()
	testPKI(t, rogueDir, "rogue")

	b := startNode(t, tlsConfig("b", dir, ca))
	sub := subscribe(t, ctx, b, topic)
	cfgA := tlsConfig("a", dir, ca)
	cfgA.StaticPeers = []string{"b=" + b.PeerAddr().String()}
	cfgA.StaticRoutes = []string{topic + "=b"}
	a := startNode(t, cfgA)
	eventually(t, 5*time.Second, "mTLS link up", func() bool { return peerStatus(a.Node, "b") == sidecar.StatusUp })
	ib, _ := peerInfo(b.Node, "a")
	if !strings.Contains(ib.PeerSubject, "CN=a") {
		t.Fatalf("b sees peer subject %q, want CN=a", ib.PeerSubject)
	}
	pub := sidecartest.DialAgent(t, a.Node)
	if ack, err := pub.PublishTo(ctx, topic, 0, []byte("secret")); err != nil || ack.RemoteDeliveries != 1 {
		t.Fatalf("%v %v", ack, err)
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Payload) != "secret" {
		t.Fatalf("%v %v", m, err)
	}

	// A node with a certificate from another CA cannot link.
	cfgR := sidecartest.Config("rogue")
	cfgR.TLSCertFile = filepath.Join(rogueDir, "rogue.pem")
	cfgR.TLSKeyFile = filepath.Join(rogueDir, "rogue.key")
	cfgR.TLSCAFile = ca
	cfgR.StaticPeers = []string{"b=" + b.PeerAddr().String()}
	r := startNode(t, cfgR)
	// A plaintext node cannot link either.
	cfgP := sidecartest.Config("plain")
	cfgP.StaticPeers = []string{"b=" + b.PeerAddr().String()}
	p := startNode(t, cfgP)
	for _, n := range []testNode{r, p} {
		// A failed attempt marks the peer down; wait for a few of them.
		eventually(t, 5*time.Second, n.NodeID()+" failing to link", func() bool {
			info, _ := peerInfo(n.Node, "b")
			return info.Status == sidecar.StatusDown
		})
	}
	if _, ok := peerInfo(b.Node, "rogue"); ok {
		t.Fatal("b accepted rogue")
	}
	if _, ok := peerInfo(b.Node, "plain"); ok {
		t.Fatal("b accepted plain")
	}
}
