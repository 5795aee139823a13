package prometheus_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestAnswers feeds the source answers a real Prometheus gives only in
// situations a test cannot stage (warnings about partial data from remote
// storage, native histograms) and what proxies in front of it say (429,
// 502 pages, redirects), from a recording server.
func TestAnswers(t *testing.T) {
	const evalTime = `1700000000.5`
	tests := map[string]struct {
		status    int
		ctype     string
		body      string
		header    map[string]string
		want      float64
		permanent rotator.Reason // "": retryable when err is set
		reason    rotator.Reason
		err       string
		absent    []string // must not appear in the error
	}{
		"vector": {
			status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"x"},"value":[` + evalTime + `,"0.5"]},{"metric":{"a":"y"},"value":[` + evalTime + `,"1"]}]}}`,
			want: 1.5,
		},
		"infos are fine": {
			status: 200, body: `{"status":"success","infos":["PromQL info: metric might not be a counter"],"data":{"resultType":"scalar","result":[` + evalTime + `,"0"]}}`,
		},
		"warnings": {
			status: 200, body: `{"status":"success","warnings":["remote read: store eu-1 unavailable","second"],"data":{"resultType":"vector","result":[]}}`,
			reason: rotator.ReasonTransient, err: "answered with warnings, the data may be partial: remote read: store eu-1 unavailable (and 1 more)",
		},
		"native histogram": {
			status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[` + evalTime + `,{"count":"1","sum":"1"}]}]}}`,
			permanent: rotator.ReasonInvalid, err: "native histogram",
		},
		"malformed value": {
			status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[` + evalTime + `,"lots"]}}`,
			permanent: rotator.ReasonInvalid, err: `malformed sample value "lots"`,
		},
		"error with 200": {
			status: 200, body: `{"status":"error","errorType":"internal","error":"boom"}`,
			permanent: rotator.ReasonInvalid, err: `status "error": internal: boom`,
		},
		"not JSON": {
			status: 200, ctype: "text/html", body: `<html>login</html>`,
			reason: rotator.ReasonTransient, err: "not a Prometheus API answer (content type text/html)", absent: []string{"login"},
		},
		"timeout": {
			status: 503, body: `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`,
			reason: rotator.ReasonTransient, err: "HTTP 503 timeout: query timed out",
		},
		"rate limited": {
			status: 429, ctype: "text/plain", body: "slow down", header: map[string]string{"Retry-After": "3"},
			reason: rotator.ReasonRateLimited, err: "HTTP 429 Too Many Requests",
		},
		"bad gateway page": {
			status: 502, ctype: "text/html", body: "<h1>upstream said Authorization: Bearer leaked</h1>",
			reason: rotator.ReasonTransient, err: "HTTP 502 Bad Gateway", absent: []string{"leaked", "upstream said"},
		},
		"forbidden": {
			status: 403, ctype: "text/plain", body: "no",
			permanent: rotator.ReasonAuth, err: "HTTP 403 Forbidden",
		},
		"not found": {
			status: 404, ctype: "text/plain", body: "404 page not found",
			permanent: rotator.ReasonInvalid, err: "HTTP 404 Not Found",
		},
		"redirect": {
			status: 302, header: map[string]string{"Location": "http://elsewhere.invalid/api/v1/query"},
			permanent: rotator.ReasonInvalid, err: "redirect not followed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var got []*http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Clone(r.Context()))
				mu.Unlock()
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				ct := tc.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			t.Setenv("PROM_TOKEN", "tok-abcdef-123456")
			c := cfgFor(srv.URL+"/tenant-a/prometheus", rateQuery, 0)
			c.BearerTokenEnv = "PROM_TOKEN"
			src := newSource(t, c, "tok-abcdef-123456")
			r, err := read(src, rotator.TrafficQuery{Key: "billing", OldName: `billing-v1`})

			mu.Lock()
			if len(got) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(got))
			}
			req := got[0]
			mu.Unlock()
			if req.Method != http.MethodGet || req.URL.Path != "/tenant-a/prometheus/api/v1/query" {
				t.Errorf("request %s %s", req.Method, req.URL.Path)
			}
			vals := req.URL.Query()
			wantQuery := `sum(rate(kubeadapt_requests_total{key_name="billing-v1",code="401"}[5m]))`
			if vals.Get("query") != wantQuery || vals.Get("timeout") != "10s" || vals.Has("time") {
				t.Errorf("parameters %v, want query %s, timeout 10s and no time (Prometheus' now)", vals, wantQuery)
			}
			if req.Header.Get("Authorization") != "Bearer tok-abcdef-123456" {
				t.Errorf("Authorization %q", req.Header.Get("Authorization"))
			}

			switch {
			case tc.err == "":
				if err != nil || r.Value != tc.want {
					t.Fatalf("got %+v, %v; want %g", r, err, tc.want)
				}
				if tc.want != 0 && r.At.Unix() != 1700000000 {
					t.Errorf("reading time %s, want Prometheus' evaluation time", r.At)
				}
			case tc.permanent != "":
				wantPermanent(t, err, tc.permanent, tc.err)
			default:
				wantRetryable(t, err, tc.err)
				if rotator.ReasonOf(err) != tc.reason {
					t.Errorf("reason %s, want %s", rotator.ReasonOf(err), tc.reason)
				}
			}
			if err != nil {
				for _, a := range append(tc.absent, "tok-abcdef-123456") {
					if strings.Contains(err.Error(), a) {
						t.Errorf("error quotes %q: %v", a, err)
					}
				}
			}
		})
	}
}
