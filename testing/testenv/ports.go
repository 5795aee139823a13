package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Vault, moto_server, Prometheus and PostgreSQL cannot listen on port 0 and
// report the port they bound, so testenv must pick a port, release it, and
// pass it to the server: another process on the machine may take it in
// between. launch therefore checks that the server which answers is really
// ours (it owns the listening socket) and, when the port was taken, retries
// with a fresh one, a bounded number of times. Our own servers (rekey,
// kubeadapt, rekey-consumer) listen on port 0 and report their address
// instead; never pick a port for them.

// launchAttempts bounds the fresh ports launch tries.
const launchAttempts = 5

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no other caller in this test binary has been given. Anything may
// take it afterwards: use it only where nothing should listen (a dead
// address), never to start a server on.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testenv: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("testenv: find a free port: %w", err)
		}
		portsMu.Lock()
		used := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if !used {
			return port, nil
		}
	}
	return 0, errors.New("testenv: find a free port: every port offered was already handed out")
}

// launch starts a server on a fresh port; build configures a process for a
// port. When the port chosen was taken in the meantime (the server fails to
// bind, or another process answers there), it tries again with another
// port, up to launchAttempts times.
func launch(build func(port int) (*process, error)) (*process, error) {
	var lastErr error
	for range launchAttempts {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := build(port)
		if err != nil {
			return nil, err
		}
		if lastErr = p.start(); lastErr == nil {
			return p, nil
		}
		if !errors.Is(lastErr, errPortBusy) && !p.addrInUse() {
			return nil, lastErr
		}
	}
	return nil, fmt.Errorf("testenv: %d fresh ports were all taken before the server could bind one: %w", launchAttempts, lastErr)
}

var errPortBusy = errors.New("port busy")

// waitPortFree polls until addr can be listened on again.
func waitPortFree(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s after %s: %w", errPortBusy, addr, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// checkOwner returns nil when a process of the group pgid listens on addr
// (127.0.0.1:port), and an errPortBusy error when another process does: its
// readiness probe was answered by a stranger that took the port first.
func checkOwner(name string, pgid int, addr string) error {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err
	}
	inodes, err := listeningInodes(port)
	if err != nil {
		return fmt.Errorf("testenv: %s: %w", name, err)
	}
	if len(inodes) == 0 {
		return fmt.Errorf("testenv: %s: answered on %s, but no socket listens there", name, addr)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		if processGroup(dir) != pgid {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err == nil && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: testenv: %s: another process listens on %s", errPortBusy, name, addr)
}

// listeningInodes returns the socket inodes that listen on 127.0.0.1:port
// or on every address, from /proc/net/tcp and tcp6.
func listeningInodes(port int) (map[string]bool, error) {
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	read := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		read++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
				continue
			}
			inodes[fields[9]] = true
		}
		f.Close()
	}
	if read == 0 {
		return nil, errors.New("cannot read /proc/net/tcp")
	}
	return inodes, nil
}

// processGroup returns the process group of /proc/<pid>, or -1.
func processGroup(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return -1
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 3 {
		return -1
	}
	pgrp, err := strconv.Atoi(fields[2])
	if err != nil {
		return -1
	}
	return pgrp
}
