package mlsinterop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/agwproject/agw/mls"
	"github.com/agwproject/agw/mls/suite"
)

// BenchOptions sets what Compare measures.
type BenchOptions struct {
	Suite      suite.ID // cipher suite (default 1)
	Sizes      []int    // group sizes for add/process/join (default 16, 128, 512)
	Iterations int      // timed repetitions per size; the median is reported (default 3)
	Payload    int      // application message size in bytes (default 1024)
	Messages   int      // encrypt/decrypt repetitions (default 50)
}

func (o BenchOptions) withDefaults() BenchOptions {
	if o.Suite == 0 {
		o.Suite = 1
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []int{16, 128, 512}
	}
	if o.Iterations <= 0 {
		o.Iterations = 3
	}
	if o.Payload <= 0 {
		o.Payload = 1024
	}
	if o.Messages <= 0 {
		o.Messages = 50
	}
	return o
}

// Row is one operation timed in both implementations (median, milliseconds).
type Row struct {
	Op      string
	Size    int
	GoMS    float64
	TSMLSMS float64
}

// Ratio is how many times slower ts-mls is than Go (0 if Go took no time).
func (r Row) Ratio() float64 {
	if r.GoMS <= 0 {
		return 0
	}
	return r.TSMLSMS / r.GoMS
}

// RunComparison times the same MLS operations in agw's Go library and in
// ts-mls (through driver.mjs in driverDir, run with nodePath) with the
// default options, and writes the side-by-side table to w.
func RunComparison(ctx context.Context, nodePath, driverDir string, w io.Writer) error {
	rows, err := Compare(ctx, nodePath, driverDir, BenchOptions{})
	if err != nil {
		return err
	}
	return PrintTable(w, BenchOptions{}.withDefaults(), rows)
}

// Compare runs the measurements: create a group; for each size n, commit
// an Add of one member to a group of n, process that commit at another
// member, join the new member from the Welcome; encrypt and decrypt a
// payload. The group grows by one member per iteration. Each side measures
// inside its own process, so the pipe to Node.js is not timed.
func Compare(ctx context.Context, nodePath, driverDir string, opts BenchOptions) ([]Row, error) {
	opts = opts.withDefaults()
	goRes, err := benchGo(ctx, opts)
	if err != nil {
		return nil, err
	}
	d, err := Start(ctx, nodePath, driverDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	rep, err := d.Call(ctx, "bench", map[string]any{
		"suite": int(opts.Suite), "sizes": opts.Sizes, "iterations": opts.Iterations,
		"payload": opts.Payload, "messages": opts.Messages,
	})
	if err != nil {
		return nil, err
	}
	if err := d.Close(); err != nil {
		return nil, err
	}
	ts := map[string]float64{}
	for _, r := range rep.Results {
		ts[rowKey(r.Op, r.Size)] = r.MS
	}
	rows := make([]Row, 0, len(goRes))
	for _, g := range goRes {
		v, ok := ts[rowKey(g.Op, g.Size)]
		if !ok {
			return nil, fmt.Errorf("mlsinterop: ts-mls bench has no result for %q at %d members", g.Op, g.Size)
		}
		rows = append(rows, Row{Op: g.Op, Size: g.Size, GoMS: g.MS, TSMLSMS: v})
	}
	return rows, nil
}

func rowKey(op string, size int) string { return fmt.Sprintf("%s/%d", op, size) }

// PrintTable writes rows as an aligned table.
func PrintTable(w io.Writer, opts BenchOptions, rows []Row) error {
	opts = opts.withDefaults()
	if _, err := fmt.Fprintf(w, "MLS suite %d: agw (Go) vs ts-mls 1.6.4 (Node.js), median of %d runs (%d for messages)\n",
		opts.Suite, opts.Iterations, opts.Messages); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tmembers\tGo ms\tts-mls ms\tts-mls/Go\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.1fx\t\n", r.Op, r.Size, r.GoMS, r.TSMLSMS, r.Ratio())
	}
	return tw.Flush()
}

// benchGo mirrors runBench in driver.mjs with the Go library.
func benchGo(ctx context.Context, opts BenchOptions) ([]BenchResult, error) {
	s := opts.Suite
	cred := func(name string) mls.Credential { return mls.BasicCredential([]byte(name)) }
	var out []BenchResult
	timeIt := func(f func() error) (float64, error) {
		t0 := time.Now()
		err := f()
		return float64(time.Since(t0).Nanoseconds()) / 1e6, err
	}

	ts := make([]float64, 0, opts.Iterations)
	for i := range opts.Iterations {
		ms, err := timeIt(func() error {
			_, err := mls.NewGroup(s, cred(fmt.Sprintf("creator-%d", i)), mls.WithGroupID([]byte(fmt.Sprintf("bench-create-%d", i))))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("mlsinterop: go bench: create group: %w", err)
		}
		ts = append(ts, ms)
	}
	out = append(out, BenchResult{Op: "create group", Size: 1, MS: median(ts)})

	for si, n := range opts.Sizes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		creator, err := mls.NewGroup(s, cred("creator"), mls.WithGroupID([]byte(fmt.Sprintf("bench-%d", n))))
		if err != nil {
			return nil, fmt.Errorf("mlsinterop: go bench: %w", err)
		}
		var receiver *mls.Group
		if n > 1 {
			kps := make([][]byte, 0, n-1)
			var last *mls.KeyPackageBundle
			for i := 1; i < n; i++ {
				kpb, err := mls.GenerateKeyPackage(s, cred(fmt.Sprintf("member-%d", i)))
				if err != nil {
					return nil, fmt.Errorf("mlsinterop: go bench: key package: %w", err)
				}
				kps = append(kps, kpb.Bytes())
				last = kpb
			}
			res, err := creator.Add(kps)
			if err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: add %d members: %w", n-1, err)
			}
			if _, err := creator.MergePendingCommit(); err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: %w", err)
			}
			if receiver, err = mls.Join(res.Welcome, last); err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: join %d-member group: %w", n, err)
			}
		}
		var add, proc, join []float64
		for i := range opts.Iterations {
			kpb, err := mls.GenerateKeyPackage(s, cred(fmt.Sprintf("joiner-%d", i)))
			if err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: key package: %w", err)
			}
			var res *mls.CommitResult
			ms, err := timeIt(func() error {
				var err error
				if res, err = creator.Add([][]byte{kpb.Bytes()}); err != nil {
					return err
				}
				_, err = creator.MergePendingCommit()
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: add to %d: %w", n, err)
			}
			add = append(add, ms)
			if receiver != nil {
				ms, err := timeIt(func() error {
					_, err := receiver.ProcessMessage(res.Commit)
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("mlsinterop: go bench: process commit at %d: %w", n, err)
				}
				proc = append(proc, ms)
			}
			var joined *mls.Group
			ms, err = timeIt(func() error {
				var err error
				joined, err = mls.Join(res.Welcome, kpb)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("mlsinterop: go bench: join at %d: %w", n, err)
			}
			if !bytes.Equal(joined.EpochAuthenticator(), creator.EpochAuthenticator()) {
				return nil, fmt.Errorf("mlsinterop: go bench: joiner disagrees with the creator at %d members", n)
			}
			join = append(join, ms)
		}
		out = append(out, BenchResult{Op: "add member (commit)", Size: n, MS: median(add)})
		if len(proc) > 0 {
			out = append(out, BenchResult{Op: "process commit", Size: n, MS: median(proc)})
		}
		out = append(out, BenchResult{Op: "join from welcome", Size: n, MS: median(join)})

		if si == 0 && receiver != nil {
			data := bytes.Repeat([]byte{'a'}, opts.Payload)
			var enc, dec []float64
			for range opts.Messages {
				var msg []byte
				ms, err := timeIt(func() error {
					var err error
					msg, err = creator.Encrypt(data)
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("mlsinterop: go bench: encrypt: %w", err)
				}
				enc = append(enc, ms)
				var got []byte
				ms, err = timeIt(func() error {
					var err error
					got, err = receiver.Decrypt(msg)
					return err
				})
				if err != nil || !bytes.Equal(got, data) {
					return nil, fmt.Errorf("mlsinterop: go bench: decrypt: %v", err)
				}
				dec = append(dec, ms)
			}
			out = append(out,
				BenchResult{Op: fmt.Sprintf("encrypt %d B", opts.Payload), Size: n, MS: median(enc)},
				BenchResult{Op: fmt.Sprintf("decrypt %d B", opts.Payload), Size: n, MS: median(dec)})
		}
	}
	return out, nil
}

// median matches the driver's: the element at len/2 of the sorted values.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
