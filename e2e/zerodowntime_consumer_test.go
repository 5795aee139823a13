package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

var (
	consumerOnce sync.Once
	consumerBin  string
	consumerErr  error
)

// consumerBinary builds testing/cmd/rekey-consumer once, beside the rekey binary
// (TestMain removes that directory).
func consumerBinary(t *testing.T) string {
	t.Helper()
	consumerOnce.Do(func() {
		consumerBin = filepath.Join(filepath.Dir(binary), "rekey-consumer")
		out, err := exec.Command("go", "build", "-o", consumerBin, "../testing/cmd/rekey-consumer").CombinedOutput()
		if err != nil {
			consumerErr = fmt.Errorf("build rekey-consumer: %v\n%s", err, out)
		}
	})
	if consumerErr != nil {
		t.Fatal(consumerErr)
	}
	return consumerBin
}

// consumerProc is one running rekey-consumer.
type consumerProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	report string
	done   chan struct{}
	final  *consumer.Report
}

// Sources of a consumer.
func (s *zdStack) fileSource() []string {
	return []string{"-file", filepath.Join(s.w.dir, "secrets", zdKey+".json")}
}
func (s *zdStack) vaultSource() []string { return []string{"-vault-path", "team/" + zdKey} }
func (s *zdStack) awsSource() []string {
	return []string{"-awssm-secret", "team/" + zdKey, "-awssm-endpoint", s.moto.Endpoint}
}

// startConsumer runs a rekey-consumer named name against the API with the
// source flags and extra environment; reload 0 reads the key once. Its log
// and report join the files the secret scan searches.
func (s *zdStack) startConsumer(name string, reload time.Duration, source []string, env ...string) *consumerProc {
	s.t.Helper()
	bin := consumerBinary(s.t)
	report := filepath.Join(s.w.dir, "consumer-"+name+".json")
	logPath := filepath.Join(s.w.dir, "consumer-"+name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	args := append([]string{"-url", s.ka.URL(), "-reload", reload.String(), "-interval", "20ms", "-report", report, "-report-every", "100ms"}, source...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), s.env()...), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := &consumerProc{t: s.t, name: name, cmd: cmd, report: report, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(c.done) }()
	s.t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	})
	s.w.logs = append(s.w.logs, logPath, report)
	return c
}

// live returns the consumer's latest periodic report (zero before the
// first).
func (c *consumerProc) live() consumer.Report {
	if c.final != nil {
		return *c.final
	}
	r, _ := consumer.ReadReport(c.report)
	return r
}

// waitServed waits until the consumer got n answers of 2xx.
func (c *consumerProc) waitServed(n int, within time.Duration) {
	c.t.Helper()
	deadline := patient(within)
	for c.live().Served < n {
		select {
		case <-c.done:
			c.t.Fatalf("consumer %s exited: %s", c.name, readFile(c.t, strings.TrimSuffix(c.report, ".json")+".log"))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("consumer %s: fewer than %d requests served within %s: %+v", c.name, n, within, c.live())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the consumer with SIGTERM and returns its final report.
func (c *consumerProc) stop() consumer.Report {
	c.t.Helper()
	if c.final != nil {
		return *c.final
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("consumer %s did not stop on SIGTERM", c.name)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("consumer %s exited %d: %s", c.name, code, readFile(c.t, strings.TrimSuffix(c.report, ".json")+".log"))
	}
	r, err := consumer.ReadReport(c.report)
	if err != nil {
		c.t.Fatalf("consumer %s: %v", c.name, err)
	}
	c.final = &r
	return r
}

// summary is one line of figures for the test log.
func summary(name string, r consumer.Report) string {
	return fmt.Sprintf("consumer %-9s requests %5d served %5d failures %3d by status %v; %d keys, %d reads (%d errors); %s",
		name, r.Requests, r.Served, r.Failures, r.ByStatus, len(r.Keys), r.Reads, r.ReadErrors, r.Source)
}
