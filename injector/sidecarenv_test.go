package injector

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// sidecarSources are the files that declare what the sidecar process reads
// from its environment. The injector may not import them (DESIGN.md's import
// rules), so the test reads their source.
var sidecarSources = []string{
	"../sidecar/config.go",
	"../xds/client/config.go",
	"../internal/logging/logging.go",
	"../xds/identity.go",
	"../internal/identity/config.go", // sidecar.Config.Identity
}

// declaredEnv returns every env:"NAME" struct tag and every "POD_*" string
// literal in the files.
func declaredEnv(t *testing.T, files []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Field:
				if x.Tag != nil {
					tag, err := strconv.Unquote(x.Tag.Value)
					if err == nil {
						if name, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ","); name != "" {
							out[name] = path
						}
					}
				}
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					if s, err := strconv.Unquote(x.Value); err == nil && strings.HasPrefix(s, "POD_") && !strings.ContainsAny(s, " %") {
						out[s] = path
					}
				}
			}
			return true
		})
	}
	return out
}

// TestSidecarEnvIsReal: every variable the injector gives the sidecar is one
// the sidecar reads (POD_SERVICE_ACCOUNT is informational: exported for the
// agent's identity, read by nothing yet).
func TestSidecarEnvIsReal(t *testing.T) {
	declared := declaredEnv(t, sidecarSources)
	for _, want := range []string{"AGW_XDS_SERVER", "AGW_IDENTITY_DIR", "AGW_PEER_NODE_BINDING", "AGW_LOG_LEVEL", "POD_NAME", "POD_NAMESPACE", "POD_IP"} {
		if declared[want] == "" {
			t.Fatalf("%s not found in %v: the source scan is broken", want, sidecarSources)
		}
	}
	cfg := DefaultConfig()
	c, _, err := cfg.sidecar(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Env) < 8 || envValue(c, "AGW_IDENTITY_DIR") != IdentityMountPath {
		t.Fatalf("%d env vars with an identity, AGW_IDENTITY_DIR %q", len(c.Env), envValue(c, "AGW_IDENTITY_DIR"))
	}
	for _, e := range c.Env {
		if e.Name == "POD_SERVICE_ACCOUNT" {
			continue
		}
		if declared[e.Name] == "" {
			t.Errorf("the injector sets %s, which the sidecar does not read", e.Name)
		}
	}
	if declared["AGW_ADMIN_LISTEN"] == "" || !strings.Contains(readFile(t, "../sidecar/config.go"), `envDefault:":15000"`) {
		t.Errorf("the sidecar's admin port is no longer :%d; update AdminPort", AdminPort)
	}
	if !strings.Contains(readFile(t, "../sidecar/config.go"), `envDefault:":46358"`) {
		t.Errorf("the sidecar's peer port is no longer :%d; update PeerPort", PeerPort)
	}
}

// TestSidecarIdentityEnv: with an identity Secret the sidecar gets its
// directory, the trust domains and the node binding; without one, none of
// them.
func TestSidecarIdentityEnv(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdentityTrustDomains = []string{"example.org", "partner.example"}
	c, vol, err := cfg.sidecar(nil)
	if err != nil {
		t.Fatal(err)
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "agw-identity" {
		t.Fatalf("identity volume %+v", vol)
	}
	for name, want := range map[string]string{
		"AGW_IDENTITY_DIR":           IdentityMountPath,
		"AGW_IDENTITY_TRUST_DOMAINS": "example.org,partner.example",
		"AGW_PEER_NODE_BINDING":      "namespace",
	} {
		if got := envValue(c, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	c, vol, err = cfg.sidecar(map[string]string{AnnotationIdentitySecret: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if vol != nil || len(c.VolumeMounts) != 0 {
		t.Errorf("identity none: volume %+v, mounts %+v", vol, c.VolumeMounts)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "AGW_IDENTITY_") || e.Name == "AGW_PEER_NODE_BINDING" || e.Name == "AGW_XDS_SERVER" {
			t.Errorf("identity none: env %s=%q", e.Name, e.Value)
		}
	}
	// Local only: the sidecar refuses peers without an identity.
	if v, ok := envLookup(c, "AGW_PEER_LISTEN"); !ok || v != "" {
		t.Errorf("identity none: AGW_PEER_LISTEN = %q (set %v), want set and empty", v, ok)
	}
	for _, p := range c.Ports {
		if p.Name == "agw-peer" {
			t.Error("identity none: the container still declares the peer port")
		}
	}
}

func envLookup(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}
