// Package testvec loads the IETF MLS test vectors (mlswg/mls-implementations)
// for the tests of the mls packages. The vectors live in
// ../shared/mls-test-vectors relative to the repository root, or in the
// directory named by AGW_MLS_VECTORS.
package testvec

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// Dir returns the vectors directory.
func Dir() string {
	if d := os.Getenv("AGW_MLS_VECTORS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/mls/internal/testvec/testvec.go; the vectors sit beside the repo.
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	return filepath.Join(repo, "..", "shared", "mls-test-vectors")
}

// Load reads the named file (e.g. "tree-math.json" or
// "interop-passive/commit.json") and unmarshals it into v. A missing file
// fails the test: the vectors are part of the test suite, not optional.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		t.Fatalf("read test vectors %s: %v (set AGW_MLS_VECTORS to the vectors directory)", name, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// Hex is a byte string that unmarshals from a JSON hex string; JSON null
// gives a nil Hex.
type Hex []byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex: %w", err)
	}
	*h = d
	return nil
}

// Counter tallies passed and skipped entries per file and prints them.
type Counter struct {
	File    string
	Passed  int
	Skipped map[string]int // reason -> count
}

// Skip counts a skipped entry with its reason.
func (c *Counter) Skip(reason string) {
	if c.Skipped == nil {
		c.Skipped = map[string]int{}
	}
	c.Skipped[reason]++
}

// Report logs "<file>: N passed, M skipped (reason: k, ...)" and also
// prints it so it shows without -v.
func (c *Counter) Report(t testing.TB) {
	t.Helper()
	skipped := 0
	for _, n := range c.Skipped {
		skipped += n
	}
	msg := fmt.Sprintf("%s: %d passed, %d skipped", c.File, c.Passed, skipped)
	for _, reason := range slices.Sorted(maps.Keys(c.Skipped)) {
		msg += fmt.Sprintf(" (%s: %d)", reason, c.Skipped[reason])
	}
	t.Log(msg)
	fmt.Println("mls vectors:", msg)
}

// ShortReason is the skip reason of entries left out in -short mode.
const ShortReason = "-short: only suite 1 here; the full run without -race covers every suite"

// SkipInShort reports whether an entry of the given cipher suite is left
// out because the tests run with -short (make test runs the MLS vectors
// once in full without -race, and again under -race with -short for
// suite 1 only, since the race detector slows the crypto tenfold). A
// skipped entry is counted with ShortReason.
func (c *Counter) SkipInShort(suite uint16) bool {
	if testing.Short() && suite != 1 {
		c.Skip(ShortReason)
		return true
	}
	return false
}
