package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// RSSReport is the resident memory of an idle sidecar process beside that of
// a bare gRPC server process (the baseline), both measured the same way.
type RSSReport struct {
	Sidecar  int64 // bytes
	Baseline int64 // bytes
}

// MeasureIdleRSS starts `exe sidecar` and `exe baseline-server` (the same
// binary, so the baseline pays the same code) as child processes on
// loopback, waits until each is ready and has settled, and reads VmRSS
// from /proc.
func MeasureIdleRSS(ctx context.Context, exe string, settle time.Duration) (RSSReport, error) {
	var r RSSReport
	admin, err := freeLoopbackAddr()
	if err != nil {
		return r, err
	}
	// A local-only sidecar (empty peer listen address): a sidecar with
	// peers needs a workload identity, and an idle one holds no peer state
	// anyway. It still builds its node with MLS (a throwaway identity).
	sc := exec.CommandContext(ctx, exe, "sidecar", "--node-id", "rss-probe",
		"--agent-listen", "127.0.0.1:0", "--peer-listen=", "--admin-listen", admin,
		"--log-level", "error")
	sc.Env = append(os.Environ(), "AGW_CONTROL_PLANE=")
	if err := sc.Start(); err != nil {
		return r, fmt.Errorf("start sidecar: %w", err)
	}
	defer func() { _ = sc.Process.Kill(); _ = sc.Wait() }()
	if err := waitHTTP(ctx, "http://"+admin+"/readyz", 15*time.Second); err != nil {
		return r, fmt.Errorf("sidecar never became ready: %w", err)
	}
	time.Sleep(settle)
	if r.Sidecar, err = vmRSS(sc.Process.Pid); err != nil {
		return r, err
	}

	bl := exec.CommandContext(ctx, exe, "baseline-server")
	out, err := bl.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := bl.Start(); err != nil {
		return r, fmt.Errorf("start baseline server: %w", err)
	}
	defer func() { _ = bl.Process.Kill(); _ = bl.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening") {
		return r, fmt.Errorf("baseline server did not start: %q %v", line, err)
	}
	time.Sleep(settle)
	if r.Baseline, err = vmRSS(bl.Process.Pid); err != nil {
		return r, err
	}
	return r, nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func waitHTTP(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS line in /proc status")
}
