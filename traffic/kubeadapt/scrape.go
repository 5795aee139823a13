package kubeadapt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rekeyhq/rekey/rotator"
)

// maxBody bounds a metrics page.
const maxBody = 16 << 20

// newClient returns an HTTP client that never follows redirects (so a
// bearer token never travels to another URL).
func newClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("ca_file: read %s: %v", cfg.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{
		Timeout:       cfg.Timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// scrape fetches and parses the metrics page. Errors are classified:
// transport failures, 429 and 5xx retryable; 401/403 permanent auth; other
// answers and unparsable pages permanent invalid.
func (s *Source) scrape(ctx context.Context, what string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url.String(), nil)
	if err != nil {
		return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: build request: %w", what, err))
	}
	// Only the classic text format: this source parses nothing else.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if !s.bearer.IsZero() {
		tok, err := s.bearer.Resolve()
		if err != nil {
			return nil, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: bearer token: %w", what, err))
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		return nil, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: GET %s: %w", what, s.url.Redacted(), cause))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: GET %s: HTTP %d: read body: %v", what, s.url.Redacted(), resp.StatusCode, err))
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: GET %s: HTTP %d redirect not followed: set url to the final address", what, s.url.Redacted(), resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		// The page is not quoted: a proxy may echo the request.
		return nil, rotator.HTTPStatusError(fmt.Sprintf("%s: GET %s", what, s.url.Redacted()), resp.StatusCode, http.StatusText(resp.StatusCode))
	case len(body) > maxBody:
		return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: GET %s: metrics page larger than %d bytes", what, s.url.Redacted(), maxBody))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		// Parse errors name a line number and the offending token, which
		// come from the server's page, not from rekey's credentials.
		return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: GET %s: not the Prometheus text format: %v", what, s.url.Redacted(), err))
	}
	return fams, nil
}

// counterValue is the value of a counter (or untyped) sample.
func counterValue(mf *dto.MetricFamily, m *dto.Metric) (float64, bool) {
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), true
		}
	case dto.MetricType_UNTYPED:
		if u := m.GetUntyped(); u != nil {
			return u.GetValue(), true
		}
	}
	return 0, false
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
