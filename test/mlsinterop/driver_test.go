package mlsinterop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDriverSelf runs ts-mls against itself through the driver, so that a
// driver bug is told apart from a Go/ts-mls incompatibility.
func TestDriverSelf(t *testing.T) {
	d := startDriver(t)
	for _, s := range suites {
		a, b, c := fmt.Sprintf("a%d", s), fmt.Sprintf("b%d", s), fmt.Sprintf("c%d", s)
		call(t, d, "create", map[string]any{"name": a, "suite": int(s), "groupId": []byte("self")})
		kp := call(t, d, "keypackage", map[string]any{"name": b, "suite": int(s)}).KeyPackage
		add := call(t, d, "add", map[string]any{"name": a, "keyPackages": []any{Hex(kp)}, "public": false})
		jb := call(t, d, "join", map[string]any{"name": b, "welcome": add.Welcome})
		if !bytes.Equal(jb.EpochAuthenticator, add.EpochAuthenticator) || jb.Epoch != 1 {
			t.Fatalf("suite %d: ts-mls joiner disagrees with ts-mls creator", s)
		}
		gi := call(t, d, "groupInfo", map[string]any{"name": b}).GroupInfo
		jc := call(t, d, "joinExternal", map[string]any{"name": c, "suite": int(s), "groupInfo": gi})
		pa := call(t, d, "process", map[string]any{"name": a, "message": jc.Commit})
		if pa.Kind != "commit" || !bytes.Equal(pa.EpochAuthenticator, jc.EpochAuthenticator) {
			t.Fatalf("suite %d: ts-mls external join: kind %s, authenticators equal %v", s, pa.Kind, bytes.Equal(pa.EpochAuthenticator, jc.EpochAuthenticator))
		}
	}
	if _, err := tryCall(d, "no-such-op", nil); !errors.Is(err, ErrDriver) {
		t.Fatalf("unknown op: %v, want ErrDriver", err)
	}
	if _, err := tryCall(d, "process", map[string]any{"name": "a1", "message": "zz"}); !errors.Is(err, ErrDriver) {
		t.Fatalf("bad hex: %v, want ErrDriver", err)
	}
	// The driver still works after errors.
	call(t, d, "state", map[string]any{"name": "a1"})
}

func TestFindDepsMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindDeps(dir); !errors.Is(err, ErrDeps) {
		t.Fatalf("FindDeps on an empty dir: %v, want ErrDeps", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DriverScript), []byte("//"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The driver is there but no node_modules/ts-mls above the temp dir.
	if _, err := FindDeps(dir); !errors.Is(err, ErrDeps) || !strings.Contains(err.Error(), "make test-deps") {
		t.Fatalf("FindDeps without ts-mls: %v, want ErrDeps naming make test-deps", err)
	}
}

// TestDriverExit checks that a driver that dies is reported, not waited for.
func TestDriverExit(t *testing.T) {
	nodePath, err := FindDeps(".")
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DriverScript), []byte("process.stderr.write('boom'); process.exit(3);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Start(ctx, nodePath, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Call(ctx, "state", nil); err == nil {
		t.Fatal("call to an exited driver succeeded")
	}
	if err := d.Close(); err == nil {
		t.Fatal("Close of a driver that exited with status 3 returned nil")
	}
}

// FuzzReply checks that decoding driver replies never panics.
func FuzzReply(f *testing.F) {
	f.Add([]byte(`{"id":1,"ok":true,"commit":"00ff","epoch":3,"results":[{"op":"x","size":1,"ms":0.5}]}`))
	f.Add([]byte(`{"id":2,"ok":false,"error":"x"}`))
	f.Add([]byte(`{"welcome":"0"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Reply
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
