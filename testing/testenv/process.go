package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	pollInterval = 50 * time.Millisecond
	// stopGrace is how long a server has to exit after its stop signal
	// before its process group is killed.
	stopGrace = 10 * time.Second
	// portFreeTimeout bounds the wait for a stopped server's port.
	portFreeTimeout = 10 * time.Second
	logTailBytes    = 4 << 10
)

// process is one server child process. It runs in its own process group so
// that Stop, Pause and Resume reach every process it forks.
type process struct {
	name    string   // "vault", for messages
	path    string   // binary
	args    []string // arguments
	env     []string // added to (and overriding) the inherited environment
	dropEnv []string // prefixes of inherited variables to drop
	dir     string   // working directory
	logPath string   // stdout and stderr, appended to across restarts
	addr    string   // 127.0.0.1:port the server listens on
	cred    *syscall.Credential
	stopSig syscall.Signal

	// ready reports nil once the server answers; start polls it.
	ready        func(ctx context.Context) error
	readyTimeout time.Duration

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed once cmd has exited and been reaped
	paused bool
	starts int
}

// start launches the process and waits until it is ready. On failure the
// process is killed and the error carries the tail of its log.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return fmt.Errorf("testenv: %s: already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	if err := waitPortFree(p.addr, portFreeTimeout); err != nil {
		return fmt.Errorf("testenv: %s: %w", p.name, err)
	}
	p.starts++
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %s: open log: %w", p.name, err)
	}
	defer logf.Close() // the child holds its own copy
	fmt.Fprintf(logf, "=== testenv: start #%d: %s %s\n", p.starts, p.path, strings.Join(p.args, " "))

	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = mergeEnv(os.Environ(), p.dropEnv, p.env)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: p.cred,
		// If the test binary dies without running its cleanups (a
		// timeout panic, a kill), take the server down with it. Linux
		// sends this when the forking thread exits; Go only ends threads
		// of goroutines that exit while locked to them (go.dev/issue/27505).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: %s: start %s: %w", p.name, p.path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is in the log; callers watch done
		close(done)
	}()
	p.cmd, p.done, p.paused = cmd, done, false

	err = p.waitReady()
	if err == nil {
		err = checkOwner(p.name, cmd.Process.Pid, p.addr)
	}
	if err != nil {
		_ = p.stopLocked()
		return fmt.Errorf("%w\n--- %s log tail (%s) ---\n%s", err, p.name, p.logPath, p.tail())
	}
	return nil
}

func (p *process) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.readyTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	began := time.Now()
	for {
		err := p.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("testenv: %s exited before it was ready: %s", p.name, p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s not ready on %s after %s: %w", p.name, p.addr, time.Since(began).Round(time.Millisecond), err)
		case <-tick.C:
		}
	}
}

// running reports whether the process is started and not yet exited. The
// caller holds p.mu.
func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the process: the stop signal to the leader, up to stopGrace to
// exit, then SIGKILL to the whole group; it returns once the port is free
// again. Stopping a stopped process is a no-op.
func (p *process) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked()
}

func (p *process) stopLocked() error {
	if p.cmd == nil {
		return nil
	}
	pid := p.cmd.Process.Pid
	if p.running() {
		sig := p.stopSig
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		_ = syscall.Kill(pid, sig)
		if p.paused {
			_ = syscall.Kill(-pid, syscall.SIGCONT) // a stopped process cannot act on sig
		}
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
	}
	// Take down anything left in the group: helpers, or a leader that
	// ignored the stop signal.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testenv: %s: kill process group %d: %w", p.name, pid, err)
	}
	<-p.done
	p.cmd, p.paused = nil, false
	if err := waitPortFree(p.addr, portFreeTimeout); err != nil {
		return fmt.Errorf("testenv: %s: %w", p.name, err)
	}
	return nil
}

// pause freezes the whole process group with SIGSTOP: connections are still
// accepted by the kernel but nothing answers, as in a hung server.
func (p *process) pause() error { return p.signalGroup(syscall.SIGSTOP, true) }

// resume continues a paused process group with SIGCONT.
func (p *process) resume() error { return p.signalGroup(syscall.SIGCONT, false) }

func (p *process) signalGroup(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() {
		return fmt.Errorf("testenv: %s: not running", p.name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("testenv: %s: %s: %w", p.name, sig, err)
	}
	p.paused = paused
	if paused {
		// kill(2) returns before the kernel has stopped every thread: wait
		// until /proc says they all are, so that a request made right after
		// Pause really meets a hung server.
		return waitStopped(p.name, p.cmd.Process.Pid, 5*time.Second)
	}
	return nil
}

// waitStopped polls /proc/<pid>/task/*/stat until every thread of the
// process is in state T (stopped).
func waitStopped(name string, pid int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("testenv: %s: read process state: no threads listed", name)
		}
		stopped := true
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // the thread exited
			}
			// The state follows the command name in parentheses.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s: not stopped %s after SIGSTOP", name, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tail returns the end of the log file.
func (p *process) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:] // drop the partial first line
		}
	}
	return string(b)
}

// addrInUse reports whether the last start failed because the port was taken.
func (p *process) addrInUse() bool {
	return strings.Contains(strings.ToLower(p.tail()), "address already in use")
}

// cleanup stops the process at the end of t, first logging the tail of its
// log if t failed.
func (p *process) cleanup(t testing.TB) {
	if t.Failed() {
		t.Logf("--- %s log tail (%s) ---\n%s", p.name, p.logPath, p.tail())
	}
	if err := p.stop(); err != nil {
		t.Error(err)
	}
}

// mergeEnv returns base without variables starting with a drop prefix or
// set in extra, followed by extra.
func mergeEnv(base, drop, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
next:
	for _, kv := range base {
		for _, prefix := range drop {
			if strings.HasPrefix(kv, prefix) {
				continue next
			}
		}
		name, _, _ := strings.Cut(kv, "=")
		for _, e := range extra {
			if strings.HasPrefix(e, name+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// httpClient never reuses connections, so a paused or restarted server is
// seen as it is now.
var httpClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true}, // and no proxy
}

// httpOK returns nil when a GET of url answers 200.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
