// Package test holds the multi-process and cross-implementation tests and
// the import-direction rules of DESIGN.md.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const module = "github.com/agwproject/agw"

// allowed maps a package prefix (relative to the module) to the prefixes of
// ours it may import. Vendor (non-module, non-standard) imports are allowed
// everywhere except where stdOnly says otherwise.
var allowed = []struct {
	prefix  string
	may     []string
	stdOnly bool
}{
	{prefix: "api/", may: []string{"api/"}},
	{prefix: "mls", may: []string{"mls"}, stdOnly: true},
	{prefix: "internal/", may: []string{"internal/"}},
	{prefix: "client", may: []string{"client", "api/"}},
	{prefix: "injector", may: []string{"injector", "internal/"}},
	{prefix: "interceptors", may: []string{"interceptors", "internal/"}},
	{prefix: "xds", may: []string{"xds", "api/", "internal/"}},
	{prefix: "sidecar", may: []string{"sidecar", "api/", "client", "mls", "interceptors", "internal/"}},
	{prefix: "cmd/", may: []string{""}},
	{prefix: "test", may: []string{""}},
}

type goPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Standard     bool
}

func TestImportDirections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	std := standardPackages(t, ctx)
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []goPackage
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 3 {
		t.Fatalf("only %d packages listed; go list output looks wrong", len(pkgs))
	}
	for _, v := range violations(pkgs, std) {
		t.Error(v)
	}
	t.Logf("%d packages checked", len(pkgs))
}

// TestImportRulesCatchViolations proves the checker fails on a bad import.
func TestImportRulesCatchViolations(t *testing.T) {
	std := map[string]bool{"fmt": true}
	bad := []goPackage{
		{ImportPath: module + "/mls/tree", Imports: []string{"fmt", "google.golang.org/grpc"}},
		{ImportPath: module + "/xds", Imports: []string{module + "/sidecar"}},
		{ImportPath: module + "/api/agp/v1", XTestImports: []string{module + "/internal/names"}},
		{ImportPath: module + "/stray"},
	}
	if got := violations(bad, std); len(got) != 4 {
		t.Fatalf("want 4 violations, got %d: %q", len(got), got)
	}
	good := []goPackage{
		{ImportPath: module + "/sidecar", Imports: []string{module + "/mls", module + "/api/agp/v1", "google.golang.org/grpc"}},
		{ImportPath: module + "/mls", Imports: []string{module + "/mls/codec", "fmt"}},
		{ImportPath: module + "/cmd/agw", Imports: []string{module + "/sidecar", module + "/xds"}},
	}
	if got := violations(good, std); len(got) != 0 {
		t.Fatalf("unexpected violations: %q", got)
	}
}

func violations(pkgs []goPackage, std map[string]bool) []string {
	var out []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rule := -1
		for i, r := range allowed {
			if rel == strings.TrimSuffix(r.prefix, "/") || strings.HasPrefix(rel, r.prefix) {
				rule = i
				break
			}
		}
		if rule < 0 {
			out = append(out, fmt.Sprintf("package %s is not in DESIGN.md's layout; add it to the rules", p.ImportPath))
			continue
		}
		r := allowed[rule]
		for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
			if strings.HasPrefix(imp, module) {
				irel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
				ok := false
				for _, m := range r.may {
					if m == "" || irel == strings.TrimSuffix(m, "/") || strings.HasPrefix(irel, m) {
						ok = true
					}
				}
				if !ok {
					out = append(out, fmt.Sprintf("%s imports %s: DESIGN.md does not allow %s to import it", rel, irel, r.prefix))
				}
				continue
			}
			if r.stdOnly && !std[imp] {
				out = append(out, fmt.Sprintf("%s imports %s: %s may use the standard library only", rel, imp, r.prefix))
			}
		}
	}
	return out
}

func standardPackages(t *testing.T, ctx context.Context) map[string]bool {
	out, err := exec.CommandContext(ctx, "go", "list", "std").Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	m := map[string]bool{"C": true}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m[l] = true
	}
	return m
}
