package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// MotoBinEnv names the moto_server binary to run; without it testenv looks
// on $PATH and then in $HOME/.pyenv/shims.
const MotoBinEnv = "REKEY_MOTO_BIN"

// awsEnv is the fake AWS configuration that points nothing at real AWS.
var awsEnv = [][2]string{
	{"AWS_ACCESS_KEY_ID", "test"},
	{"AWS_SECRET_ACCESS_KEY", "test"},
	{"AWS_DEFAULT_REGION", "us-east-1"},
	{"AWS_REGION", "us-east-1"},
	{"AWS_EC2_METADATA_DISABLED", "true"},
}

// MotoServer is a moto_server (moto 5.2.1) mocking AWS Secrets Manager, IAM
// and the rest of AWS in memory. Point an SDK client at Endpoint (for
// aws-sdk-go-v2, BaseEndpoint) with the credentials from Env.
type MotoServer struct {
	Endpoint string // http://127.0.0.1:PORT
	Port     int
	Log      string // path of the server's log file

	proc *process
}

// Moto starts a moto_server for t and stops it when t ends. It changes no
// environment variables; see SetAWSEnv and MotoServer.Env.
func Moto(t testing.TB) *MotoServer {
	t.Helper()
	bin, err := findBinary("moto_server", MotoBinEnv, "moto_server", filepath.Join(homeDir(), ".pyenv", "shims", "moto_server"))
	if err != nil {
		fail(t, err)
		return nil
	}
	dir := t.TempDir()
	var m *MotoServer
	start := time.Now()
	proc, err := launch(func(port int) (*process, error) {
		m = &MotoServer{
			Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
			Port:     port,
			Log:      filepath.Join(dir, "moto.log"),
		}
		api := m.Endpoint + "/moto-api/"
		return &process{
			name:         "moto_server",
			path:         bin,
			args:         []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)},
			env:          m.Env(),
			dir:          dir,
			logPath:      m.Log,
			addr:         "127.0.0.1:" + strconv.Itoa(port),
			ready:        func(ctx context.Context) error { return httpOK(ctx, api) },
			readyTimeout: 30 * time.Second,
		}, nil
	})
	if err != nil {
		fail(t, err)
		return nil
	}
	m.proc = proc
	t.Cleanup(func() { proc.cleanup(t) })
	t.Logf("testenv: moto_server %s ready in %s (log %s)", m.Endpoint, time.Since(start).Round(time.Millisecond), m.Log)
	return m
}

// Env returns the fake AWS credentials and region (AWS_ACCESS_KEY_ID=test,
// AWS_SECRET_ACCESS_KEY=test, AWS_DEFAULT_REGION and AWS_REGION us-east-1,
// AWS_EC2_METADATA_DISABLED=true) as KEY=VALUE pairs for a child process.
func (m *MotoServer) Env() []string {
	env := make([]string, 0, len(awsEnv))
	for _, kv := range awsEnv {
		env = append(env, kv[0]+"="+kv[1])
	}
	return env
}

// SetAWSEnv sets the variables of MotoServer.Env in the test's environment
// with t.Setenv, so they are restored when t ends (and t cannot be parallel).
func SetAWSEnv(t testing.TB) {
	t.Helper()
	for _, kv := range awsEnv {
		t.Setenv(kv[0], kv[1])
	}
}

// Reset wipes all of moto's state (POST /moto-api/reset), for tests that
// share one server.
func (m *MotoServer) Reset() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return fmt.Errorf("testenv: moto reset: %w", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("testenv: moto reset: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("testenv: moto reset: %s", resp.Status)
	}
	return nil
}

// Stop stops the server and waits until its port is free.
func (m *MotoServer) Stop() error { return m.proc.stop() }

// Start starts a stopped server again on the same port. moto keeps nothing
// across a restart: every secret, user and access key is gone. Use Pause
// and Resume for an outage that keeps the state.
func (m *MotoServer) Start() error { return m.proc.start() }

// Pause freezes the server with SIGSTOP: connections are accepted but never
// answered, as in a hang; state is kept.
func (m *MotoServer) Pause() error { return m.proc.pause() }

// Resume continues a paused server with SIGCONT.
func (m *MotoServer) Resume() error { return m.proc.resume() }
