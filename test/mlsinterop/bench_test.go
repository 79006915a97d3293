package mlsinterop

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestComparisonSmall runs the comparison with tiny sizes so that the
// benchmark code path (both sides, table) is exercised by the normal test run.
func TestComparisonSmall(t *testing.T) {
	nodePath, err := FindDeps(".")
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := BenchOptions{Suite: 1, Sizes: []int{4, 8}, Iterations: 1, Payload: 64, Messages: 3}
	rows, err := Compare(ctx, nodePath, ".", opts)
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	// create + (add, process, join) per size + encrypt/decrypt once.
	if want := 1 + 3*len(opts.Sizes) + 2; len(rows) != want {
		t.Fatalf("%d rows, want %d: %+v", len(rows), want, rows)
	}
	for _, r := range rows {
		if r.GoMS <= 0 || r.TSMLSMS <= 0 {
			t.Errorf("row %q/%d: non-positive time (Go %v ms, ts-mls %v ms)", r.Op, r.Size, r.GoMS, r.TSMLSMS)
		}
	}
	var buf bytes.Buffer
	if err := PrintTable(&buf, opts, rows); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"create group", "add member (commit)", "process commit", "join from welcome", "encrypt 64 B", "decrypt 64 B"} {
		if !strings.Contains(buf.String(), op) {
			t.Errorf("table lacks %q:\n%s", op, buf.String())
		}
	}
}

// BenchmarkComparison prints the side-by-side table for groups of 16, 128
// and 512 (run with -bench Comparison -benchtime 1x; it takes a few minutes).
func BenchmarkComparison(b *testing.B) {
	nodePath, err := FindDeps(".")
	if err != nil {
		b.Fatalf("%v", err)
	}
	for _, s := range suites {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		opts := BenchOptions{Suite: s}
		for range b.N {
			rows, err := Compare(ctx, nodePath, ".", opts)
			if err != nil {
				cancel()
				b.Fatalf("compare: %v", err)
			}
			if err := PrintTable(os.Stdout, opts, rows); err != nil {
				cancel()
				b.Fatal(err)
			}
		}
		cancel()
	}
}
