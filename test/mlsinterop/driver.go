package mlsinterop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ErrDeps says that node or the npm packages of the driver are missing.
var ErrDeps = errors.New("mlsinterop: Node.js dependencies missing (run `make test-deps`)")

// ErrDriver is wrapped by errors the ts-mls driver reports for a command.
var ErrDriver = errors.New("mlsinterop: ts-mls driver error")

// DriverScript is the driver's file name inside its directory.
const DriverScript = "driver.mjs"

// FindDeps locates node on PATH and checks that driverDir holds the driver
// and that ts-mls is installed in a node_modules directory above it. The
// error wraps ErrDeps and names what is missing.
func FindDeps(driverDir string) (nodePath string, err error) {
	nodePath, err = exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: node is not on PATH: %v", ErrDeps, err)
	}
	if _, err := os.Stat(filepath.Join(driverDir, DriverScript)); err != nil {
		return "", fmt.Errorf("%w: %v", ErrDeps, err)
	}
	abs, err := filepath.Abs(driverDir)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDeps, err)
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "ts-mls", "package.json")); err == nil {
			return nodePath, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w: ts-mls is not installed in a node_modules above %s", ErrDeps, abs)
		}
	}
}

// Hex is a byte string that is a hex string in JSON.
type Hex []byte

// MarshalJSON encodes b as a hex string.
func (b Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(b)) }

// UnmarshalJSON decodes a hex string.
func (b *Hex) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("mlsinterop: bad hex in driver reply: %w", err)
	}
	*b = v
	return nil
}

// Reply is the driver's answer to a command; which fields are set depends
// on the command (see driver.mjs).
type Reply struct {
	ID    uint64 `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`

	KeyPackage  Hex    `json:"keyPackage"`
	Commit      Hex    `json:"commit"`
	Welcome     Hex    `json:"welcome"`
	RatchetTree Hex    `json:"ratchetTree"`
	GroupInfo   Hex    `json:"groupInfo"`
	Message     Hex    `json:"message"`
	Secret      Hex    `json:"secret"`
	Data        Hex    `json:"data"`
	Kind        string `json:"kind"`

	Epoch              uint64 `json:"epoch"`
	LeafIndex          uint32 `json:"leafIndex"`
	EpochAuthenticator Hex    `json:"epochAuthenticator"`
	Active             bool   `json:"active"`
	Members            int    `json:"members"`

	Results []BenchResult `json:"results"`
}

// BenchResult is one timed operation of the driver's bench command.
type BenchResult struct {
	Op   string  `json:"op"`
	Size int     `json:"size"`
	MS   float64 `json:"ms"`
}

// Driver is a running driver.mjs process. Calls are serialised.
type Driver struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	done   chan struct{} // closed when the reader goroutine ends
	stderr *limitedBuffer

	mu     sync.Mutex
	nextID uint64
	closed bool
	broken error // set when a reply went missing; later calls fail
}

// Start runs `node driver.mjs` in driverDir. The process is killed when ctx
// ends or by Close.
func Start(ctx context.Context, nodePath, driverDir string) (*Driver, error) {
	cmd := exec.CommandContext(ctx, nodePath, DriverScript)
	cmd.Dir = driverDir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("mlsinterop: driver stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("mlsinterop: driver stdout: %w", err)
	}
	d := &Driver{
		cmd: cmd, stdin: stdin,
		lines:  make(chan []byte),
		done:   make(chan struct{}),
		stderr: &limitedBuffer{max: 64 << 10},
	}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mlsinterop: start %s: %w", nodePath, err)
	}
	go d.read(stdout)
	return d, nil
}

func (d *Driver) read(stdout io.Reader) {
	defer close(d.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		d.lines <- line // Close drains replies nobody waits for
	}
}

// Call sends one command and waits for its reply. args are merged into the
// command object. A reply with ok=false becomes an error wrapping
// ErrDriver.
func (d *Driver) Call(ctx context.Context, op string, args map[string]any) (*Reply, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("mlsinterop: %s: driver closed", op)
	}
	if d.broken != nil {
		return nil, fmt.Errorf("mlsinterop: %s: driver unusable after %w", op, d.broken)
	}
	d.nextID++
	id := d.nextID
	cmd := map[string]any{"id": id, "op": op}
	for k, v := range args {
		if k == "id" || k == "op" {
			return nil, fmt.Errorf("mlsinterop: %s: reserved argument %q", op, k)
		}
		if b, ok := v.([]byte); ok {
			v = hex.EncodeToString(b)
		}
		cmd[k] = v
	}
	line, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("mlsinterop: %s: %w", op, err)
	}
	if _, err := d.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("mlsinterop: %s: write to driver: %w%s", op, err, d.stderrTail())
	}
	select {
	case <-ctx.Done():
		d.broken = fmt.Errorf("%s: %w", op, ctx.Err())
		return nil, fmt.Errorf("mlsinterop: %s: %w", op, ctx.Err())
	case <-d.done:
		return nil, fmt.Errorf("mlsinterop: %s: driver exited%s", op, d.stderrTail())
	case raw := <-d.lines:
		var r Reply
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("mlsinterop: %s: bad reply: %w", op, err)
		}
		if r.ID != id {
			return nil, fmt.Errorf("mlsinterop: %s: reply id %d, want %d", op, r.ID, id)
		}
		if !r.OK {
			return &r, fmt.Errorf("%w: %s: %s", ErrDriver, op, r.Error)
		}
		return &r, nil
	}
}

func (d *Driver) stderrTail() string {
	s := d.stderr.String()
	if s == "" {
		return ""
	}
	return "; driver stderr: " + s
}

// Close ends the driver: it closes stdin (the driver exits after the last
// command) and waits for the process; the reader goroutine is drained.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	_ = d.stdin.Close()
	// Drain replies nobody waits for so the reader reaches EOF.
	for {
		select {
		case <-d.lines:
			continue
		case <-d.done:
		}
		break
	}
	err := d.cmd.Wait()
	if err != nil {
		return fmt.Errorf("mlsinterop: driver: %w%s", err, d.stderrTail())
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
