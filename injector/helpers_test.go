package injector

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCert writes a fresh CA-signed server certificate for 127.0.0.1 to
// dir/tls.crt and dir/tls.key (replacing them atomically, as a Secret volume
// does) and returns the CA pool that verifies it and the leaf's serial.
func testCert(t testing.TB, dir string, serial int64) (*x509.CertPool, *big.Int) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "agw test CA " + strconv.FormatInt(serial, 10)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "agw-injector.agw-system.svc"},
		DNSNames:     []string{"agw-injector.agw-system.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	writeAtomic(t, filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, big.NewInt(serial)
}

func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testConfig is the configuration of the golden tests.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	c := DefaultConfig()
	c.Image = "agw:test"
	c.Listen = "127.0.0.1:0"
	c.CertFile = filepath.Join(dir, "tls.crt")
	c.KeyFile = filepath.Join(dir, "tls.key")
	return c
}

// applyPatch applies an RFC 6902 patch of "add" operations to doc, the
// only operation the injector emits; any other operation is an error. It is
// written from the RFC, independently of the code that builds patches.
func applyPatch(doc, patch []byte) ([]byte, error) {
	var root any
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	if err := d.Decode(&root); err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  *string         `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	for i, op := range ops {
		if op.Op != "add" {
			return nil, fmt.Errorf("op %d: %q not supported", i, op.Op)
		}
		if op.Path == nil || op.Value == nil {
			return nil, fmt.Errorf("op %d: missing path or value", i)
		}
		var val any
		vd := json.NewDecoder(bytes.NewReader(op.Value))
		vd.UseNumber()
		if err := vd.Decode(&val); err != nil {
			return nil, fmt.Errorf("op %d value: %w", i, err)
		}
		var err error
		if root, err = addAt(root, *op.Path, val); err != nil {
			return nil, fmt.Errorf("op %d (%s): %w", i, *op.Path, err)
		}
	}
	return json.Marshal(root)
}

func addAt(root any, path string, val any) (any, error) {
	if path == "" {
		return val, nil
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("pointer must start with /")
	}
	toks := strings.Split(path[1:], "/")
	for i, tok := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	parent := root
	for _, tok := range toks[:len(toks)-1] {
		switch p := parent.(type) {
		case map[string]any:
			next, ok := p[tok]
			if !ok {
				return nil, fmt.Errorf("member %q does not exist", tok)
			}
			parent = next
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(p) {
				return nil, fmt.Errorf("index %q out of range", tok)
			}
			parent = p[n]
		default:
			return nil, fmt.Errorf("cannot descend into %T at %q", parent, tok)
		}
	}
	last := toks[len(toks)-1]
	switch p := parent.(type) {
	case map[string]any:
		p[last] = val
	case []any:
		n := len(p)
		if last != "-" {
			var err error
			if n, err = strconv.Atoi(last); err != nil || n < 0 || n > len(p) {
				return nil, fmt.Errorf("index %q out of range", last)
			}
		}
		grown := append(p[:n:n], append([]any{val}, p[n:]...)...)
		// Put the grown array back where the old one was.
		if len(toks) == 1 {
			return grown, nil
		}
		parentPath := "/" + strings.Join(escapeAll(toks[:len(toks)-1]), "/")
		return addAt(root, parentPath, toAnySlice(grown))
	default:
		return nil, fmt.Errorf("cannot add into %T", parent)
	}
	return root, nil
}

func escapeAll(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	return out
}

func toAnySlice(s []any) any { return s }

func TestApplyPatch(t *testing.T) {
	doc := []byte(`{"a":{"b~c/d":[1,2]},"e":[]}`)
	for _, tc := range []struct {
		patch, want string
		bad         bool
	}{
		{patch: `[{"op":"add","path":"/a/b~0c~1d/0","value":0}]`, want: `{"a":{"b~c/d":[0,1,2]},"e":[]}`},
		{patch: `[{"op":"add","path":"/a/b~0c~1d/-","value":3}]`, want: `{"a":{"b~c/d":[1,2,3]},"e":[]}`},
		{patch: `[{"op":"add","path":"/a/b~0c~1d/2","value":3}]`, want: `{"a":{"b~c/d":[1,2,3]},"e":[]}`},
		{patch: `[{"op":"add","path":"/e/0","value":{"x":1}}]`, want: `{"a":{"b~c/d":[1,2]},"e":[{"x":1}]}`},
		{patch: `[{"op":"add","path":"/f","value":"g"}]`, want: `{"a":{"b~c/d":[1,2]},"e":[],"f":"g"}`},
		{patch: `[{"op":"add","path":"/a/b~0c~1d/3","value":3}]`, bad: true},
		{patch: `[{"op":"add","path":"/x/y","value":3}]`, bad: true},
		{patch: `[{"op":"remove","path":"/a"}]`, bad: true},
	} {
		got, err := applyPatch(doc, []byte(tc.patch))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: applied, want an error", tc.patch)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.patch, err)
			continue
		}
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal([]byte(tc.want), &w)
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%s: got %s, want %s", tc.patch, gj, wj)
		}
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
