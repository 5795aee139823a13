package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rekeyhq/rekey/rotator"
)

// maxBody bounds a query answer; a rate query answers in a few hundred bytes.
const maxBody = 8 << 20

// newClient returns an HTTP client that never follows redirects (so the
// bearer token or password never travels to another URL).
func newClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
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

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// queryData is the data of an instant query.
type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// vectorSample is one element of a vector result. Histogram is set instead
// of Value for a native histogram sample.
type vectorSample struct {
	Metric    map[string]string `json:"metric"`
	Value     []json.RawMessage `json:"value"`
	Histogram json.RawMessage   `json:"histogram"`
}

// result is a decoded instant query answer: the sum of the samples.
type result struct {
	kind   string // vector or scalar
	value  float64
	series int
	at     time.Time // evaluation time reported by Prometheus
}

// instantQuery runs query at Prometheus' "now" (no time parameter, so a
// skewed local clock cannot move the window past the latest samples).
// Errors are classified: transport failures, timeouts, 429 and 5xx are
// retryable, 401/403 permanent auth, 400 (syntax) and unusable answers
// permanent invalid, 422 (execution) an executionError (see
// judgeExecution); warnings (partial data) retryable.
func (s *Source) instantQuery(ctx context.Context, what, query string) (result, error) {
	u := *s.endpoint
	u.RawQuery = url.Values{"query": {query}, "timeout": {model.Duration(s.timeout).String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return result{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: build request: %w", what, err))
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	if err := s.authorize(req); err != nil {
		return result{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, err))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err // the URL is named below, without the query
		}
		return result{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: GET %s: %w", what, s.endpoint.Redacted(), cause))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return result{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: GET %s: HTTP %d: read body: %v", what, s.endpoint.Redacted(), resp.StatusCode, err))
	}
	if len(body) > maxBody {
		return result{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: answer larger than %d bytes: aggregate the query (sum(…))", what, maxBody))
	}
	var ans apiResponse
	jsonErr := json.Unmarshal(body, &ans)
	isAPI := jsonErr == nil && ans.Status != ""
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return result{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: HTTP %d redirect not followed (credentials stay on the configured host): set url to the final address", what, resp.StatusCode))
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		// Prometheus explains its own errors in JSON (bad_data, execution,
		// timeout); a proxy's page is not quoted, it may echo the request.
		detail := http.StatusText(resp.StatusCode)
		if isAPI && ans.Error != "" {
			detail = ans.ErrorType + ": " + clip(ans.Error, 300)
		}
		if resp.StatusCode == http.StatusUnprocessableEntity {
			return result{}, &executionError{fmt.Errorf("%s: HTTP %d %s", what, resp.StatusCode, detail)}
		}
		return result{}, rotator.HTTPStatusError(what, resp.StatusCode, detail)
	case !isAPI:
		return result{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: HTTP %d: not a Prometheus API answer (%s)", what, resp.StatusCode, contentType(resp)))
	case ans.Status != "success":
		return result{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: status %q: %s: %s", what, ans.Status, ans.ErrorType, clip(ans.Error, 300)))
	}
	if len(ans.Infos) > 0 {
		s.log.DebugContext(ctx, "query infos", "what", what, "infos", ans.Infos)
	}
	if len(ans.Warnings) > 0 {
		s.log.WarnContext(ctx, "query answered with warnings; not trusting its value", "what", what, "warnings", ans.Warnings)
		more := ""
		if len(ans.Warnings) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(ans.Warnings)-1)
		}
		return result{}, rotator.WithReason(rotator.ReasonTransient,
			fmt.Errorf("%s: answered with warnings, the data may be partial: %s%s", what, clip(ans.Warnings[0], 200), more))
	}
	r, err := decodeResult(ans.Data)
	if err != nil {
		return result{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
	}
	return r, nil
}

// authorize sets the configured credentials, read now so that a rotated
// token file is picked up. Errors name the variable or file, not the value.
func (s *Source) authorize(req *http.Request) error {
	switch {
	case !s.bearer.IsZero():
		tok, err := s.bearer.Resolve()
		if err != nil {
			return fmt.Errorf("bearer token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	case s.basicUser != "":
		pw, err := s.basicPassword.Resolve()
		if err != nil {
			return fmt.Errorf("basic auth password: %w", err)
		}
		req.SetBasicAuth(s.basicUser, pw.Reveal())
	}
	return nil
}

// decodeResult sums a vector or reads a scalar. Anything that is not a
// finite, non-negative number is an error: the gate must not read NaN, a
// negative difference or a matrix as "no 401s".
func decodeResult(raw json.RawMessage) (result, error) {
	var d queryData
	if err := json.Unmarshal(raw, &d); err != nil {
		return result{}, fmt.Errorf("decode result: %v", err)
	}
	var r result
	switch d.ResultType {
	case "vector":
		var samples []vectorSample
		if err := json.Unmarshal(d.Result, &samples); err != nil {
			return result{}, fmt.Errorf("decode vector: %v", err)
		}
		r.kind, r.series = "vector", len(samples)
		for i, sm := range samples {
			if sm.Histogram != nil {
				return result{}, fmt.Errorf("series %d is a native histogram: query a float (histogram_count(…))", i)
			}
			at, v, err := decodePoint(sm.Value)
			if err != nil {
				return result{}, fmt.Errorf("series %d: %w", i, err)
			}
			if err := usable(v); err != nil {
				return result{}, fmt.Errorf("series %d: %w", i, err)
			}
			r.value += v
			if at.After(r.at) {
				r.at = at
			}
		}
	case "scalar":
		var point []json.RawMessage
		if err := json.Unmarshal(d.Result, &point); err != nil {
			return result{}, fmt.Errorf("decode scalar: %v", err)
		}
		at, v, err := decodePoint(point)
		if err != nil {
			return result{}, fmt.Errorf("scalar: %w", err)
		}
		if err := usable(v); err != nil {
			return result{}, fmt.Errorf("scalar: %w", err)
		}
		r.kind, r.value, r.at = "scalar", v, at
	default:
		return result{}, fmt.Errorf("result type %q: the query must return an instant vector or a scalar (a rate, not a range)", d.ResultType)
	}
	if math.IsInf(r.value, 0) {
		return result{}, errors.New("sum of the series overflows")
	}
	return r, nil
}

// decodePoint reads [<unix seconds>, "<value>"].
func decodePoint(p []json.RawMessage) (time.Time, float64, error) {
	if len(p) != 2 {
		return time.Time{}, 0, fmt.Errorf("malformed sample (%d elements)", len(p))
	}
	var ts float64
	if err := json.Unmarshal(p[0], &ts); err != nil {
		return time.Time{}, 0, fmt.Errorf("malformed sample time: %v", err)
	}
	var sv string
	if err := json.Unmarshal(p[1], &sv); err != nil {
		return time.Time{}, 0, fmt.Errorf("malformed sample value: %v", err)
	}
	v, err := strconv.ParseFloat(sv, 64)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("malformed sample value %q", clip(sv, 40))
	}
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)), v, nil
}

func usable(v float64) error {
	switch {
	case math.IsNaN(v):
		return errors.New("value is NaN (a division by zero, or no data in the window): not a rate")
	case math.IsInf(v, 0):
		return fmt.Errorf("value is %v: not a rate", v)
	case v < 0:
		return fmt.Errorf("value %g is negative, which no 401 rate can be: check the query", v)
	}
	return nil
}

func contentType(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return "content type " + clip(ct, 60)
	}
	return "no content type"
}

// clip shortens s to n bytes (on a rune boundary) for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
