package kubeadapt

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type requestLabels struct {
	keyID, keyName string
	code           int
}

// count records one data API request; it runs before the answer is written.
func (s *Server) count(keyID, keyName string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[requestLabels{keyID: keyID, keyName: keyName, code: code}]++
}

// Requests returns how many data API requests with key_id keyID (a key id,
// or UnknownKeyID) were answered with code.
func (s *Server) Requests(keyID string, code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for l, v := range s.requests {
		if l.keyID == keyID && l.code == code {
			n += v
		}
	}
	return n
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// handleMetrics serves the Prometheus text exposition format (0.0.4).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	type sample struct {
		l requestLabels
		v int
	}
	var samples []sample
	active, revoked := 0, 0
	s.mu.Lock()
	for l, v := range s.requests {
		samples = append(samples, sample{l, v})
	}
	for _, k := range s.keys {
		if k.revokedAt.IsZero() {
			active++
		} else {
			revoked++
		}
	}
	s.mu.Unlock()
	slices.SortFunc(samples, func(a, b sample) int {
		return cmp.Or(cmp.Compare(a.l.keyID, b.l.keyID), cmp.Compare(a.l.keyName, b.l.keyName), cmp.Compare(a.l.code, b.l.code))
	})

	var b strings.Builder
	b.WriteString("# HELP kubeadapt_requests_total Data API requests by API key and HTTP status code.\n")
	b.WriteString("# TYPE kubeadapt_requests_total counter\n")
	for _, sm := range samples {
		fmt.Fprintf(&b, "kubeadapt_requests_total{key_id=\"%s\",key_name=\"%s\",code=\"%d\"} %d\n",
			labelEscaper.Replace(sm.l.keyID), labelEscaper.Replace(sm.l.keyName), sm.l.code, sm.v)
	}
	b.WriteString("# HELP kubeadapt_api_keys API keys by status.\n")
	b.WriteString("# TYPE kubeadapt_api_keys gauge\n")
	fmt.Fprintf(&b, "kubeadapt_api_keys{status=%q} %d\n", StatusActive, active)
	fmt.Fprintf(&b, "kubeadapt_api_keys{status=%q} %d\n", StatusRevoked, revoked)

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(b.String()))
	}
}
