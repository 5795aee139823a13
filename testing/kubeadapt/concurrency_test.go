package kubeadapt_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// TestConcurrentUse mints, uses and revokes keys from many goroutines while
// others list keys and scrape metrics; run it with -race.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	const workers, uses = 16, 20

	ids := make([]string, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers*4)
	for w := range workers {
		wg.Go(func() {
			k, secret, err := e.s.CreateKey(kubeadapt.KeyRequest{Name: fmt.Sprintf("w%d", w), Scopes: []string{kubeadapt.ScopeClustersRead}})
			if err != nil {
				errs <- err
				return
			}
			ids[w] = k.ID
			for range uses {
				if code := get(e.url+"/v1/clusters", secret); code != http.StatusOK {
					errs <- fmt.Errorf("worker %d: use = %d", w, code)
				}
			}
			if code := do(http.MethodDelete, e.url+"/admin/v1/api-keys/"+k.ID, adminToken); code != http.StatusNoContent {
				errs <- fmt.Errorf("worker %d: revoke = %d", w, code)
			}
			if code := get(e.url+"/v1/clusters", secret); code != http.StatusUnauthorized {
				errs <- fmt.Errorf("worker %d: use after revoke = %d", w, code)
			}
		})
		wg.Go(func() {
			for range uses / 4 {
				_ = do(http.MethodGet, e.url+"/admin/v1/api-keys", adminToken)
				_ = do(http.MethodGet, e.url+"/metrics", "")
				_ = e.s.Keys()
				e.s.FailNext(0, http.StatusServiceUnavailable)
				e.clock.Advance(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		if got := e.s.Requests(id, 200); got != uses {
			t.Errorf("Requests(%s, 200) = %d, want %d", id, got, uses)
		}
		if got := e.s.Requests(id, 401); got != 1 {
			t.Errorf("Requests(%s, 401) = %d, want 1", id, got)
		}
	}
	m := scrape(t, e)
	if m[`kubeadapt_api_keys{status="revoked"}`] != fmt.Sprint(workers) || m[`kubeadapt_api_keys{status="active"}`] != "0" {
		t.Errorf("gauges = %v", m)
	}
}

func get(url, key string) int { return do(http.MethodGet, url, key) }

// do sends a bodiless request with an optional bearer token and returns the
// status, or -1 on a transport error.
func do(method, url, token string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return -1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
