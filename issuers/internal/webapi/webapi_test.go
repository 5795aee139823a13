package webapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/issuers/internal/webapi"
	"github.com/rekeyhq/rekey/rotator"
)

func TestStatuses(t *testing.T) {
	tests := map[string]struct {
		in      webapi.Statuses
		has     []int
		hasNot  []int
		wantErr string
	}{
		"codes":           {in: webapi.Statuses{201, "204"}, has: []int{201, 204}, hasNot: []int{200, 202}},
		"class":           {in: webapi.Statuses{429, "5xx"}, has: []int{429, 500, 503, 599}, hasNot: []int{428, 400, 600}},
		"range":           {in: webapi.Statuses{"500-502"}, has: []int{500, 502}, hasNot: []int{503}},
		"comma list":      {in: webapi.Statuses{"409, 404"}, has: []int{404, 409}, hasNot: []int{410}},
		"yaml floats":     {in: webapi.Statuses{float64(200), int64(201), uint64(202)}, has: []int{200, 201, 202}},
		"empty":           {in: nil, hasNot: []int{200}},
		"out of range":    {in: webapi.Statuses{600}, wantErr: `f: "600" is not a status code`},
		"bad class":       {in: webapi.Statuses{"6xx"}, wantErr: `f: "6xx"`},
		"reversed range":  {in: webapi.Statuses{"502-500"}, wantErr: `f: "502-500"`},
		"not a number":    {in: webapi.Statuses{true}, wantErr: "f: true is not a status code"},
		"fractional code": {in: webapi.Statuses{200.5}, wantErr: "f: 200.5 is not a status code"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			set, err := tc.in.Parse("f")
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.has {
				if !set.Has(c) {
					t.Errorf("%v does not have %d", set, c)
				}
			}
			for _, c := range tc.hasNot {
				if set.Has(c) {
					t.Errorf("%v has %d", set, c)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		header string
		want   time.Duration
	}{
		"absent":   {"", 0},
		"seconds":  {"120", 2 * time.Minute},
		"zero":     {"0", 0},
		"negative": {"-5", 0},
		"date":     {now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		"past":     {now.Add(-time.Hour).Format(http.TimeFormat), 0},
		"garbage":  {"soon", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			if got := webapi.RetryAfter(h, now); got != tc.want {
				t.Errorf("RetryAfter(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		status    int
		retry     webapi.StatusSet
		permanent bool
		reason    rotator.Reason
	}{
		"429":                  {429, webapi.DefaultRetry, false, rotator.ReasonRateLimited},
		"503":                  {503, webapi.DefaultRetry, false, rotator.ReasonTransient},
		"401":                  {401, webapi.DefaultRetry, true, rotator.ReasonAuth},
		"403":                  {403, webapi.DefaultRetry, true, rotator.ReasonAuth},
		"404":                  {404, webapi.DefaultRetry, true, rotator.ReasonInvalid},
		"409 not in retry":     {409, webapi.DefaultRetry, true, rotator.ReasonInvalid},
		"409 in retry":         {409, webapi.MustParse(409), false, rotator.ReasonTransient},
		"500 removed by retry": {500, webapi.MustParse(429), true, rotator.ReasonInvalid},
		"302":                  {302, webapi.DefaultRetry, true, rotator.ReasonInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{"Retry-After": {"3"}}
			err := webapi.Classify(&webapi.StatusError{What: "x: mint k", Method: "POST", URL: "https://h/p", Status: tc.status}, h, tc.retry, time.Now())
			if rotator.IsPermanent(err) != tc.permanent || rotator.ReasonOf(err) != tc.reason {
				t.Errorf("Classify(%d) = %v/%s, want %v/%s", tc.status, rotator.IsPermanent(err), rotator.ReasonOf(err), tc.permanent, tc.reason)
			}
			want := fmt.Sprintf("x: mint k: POST https://h/p: HTTP %d", tc.status)
			if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "(retry after 3s)") {
				t.Errorf("error text %q", err)
			}
			var se *webapi.StatusError
			if !errors.As(err, &se) || se.RetryAfter() != 3*time.Second {
				t.Errorf("RetryAfter not carried: %v", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	doc, err := webapi.DecodeJSON([]byte(`{"data":[{"id":"a","n":12345678901234567890},{"id":"b"}],"secret":"s","nested":{"x":{"y":null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path   string
		scalar string
		ok     bool
	}{
		"member":        {"secret", "s", true},
		"index":         {"data.1.id", "b", true},
		"big number":    {"data.0.n", "12345678901234567890", true},
		"null":          {"nested.x.y", "", false},
		"object":        {"nested", "", false},
		"missing":       {"data.2.id", "", false},
		"not an index":  {"data.first", "", false},
		"through value": {"secret.x", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, _ := webapi.Lookup(doc, tc.path)
			got, ok := webapi.Scalar(v)
			if got != tc.scalar || ok != tc.ok {
				t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.scalar, tc.ok)
			}
		})
	}
	for _, body := range []string{`secret=abc`, `{"a":1}{"b":2}`, ``} {
		_, err := webapi.DecodeJSON([]byte(body))
		if err == nil || (body != "" && strings.Contains(err.Error(), body)) {
			t.Errorf("DecodeJSON(%q) = %v, want an error that does not quote the body", body, err)
		}
	}
}

func TestPrefix(t *testing.T) {
	err := webapi.Prefix("verify", errors.Join(errors.New("url: required"), errors.Join(errors.New("expect: bad"))))
	if got, want := err.Error(), "verify.url: required\nverify.expect: bad"; got != want {
		t.Errorf("Prefix = %q, want %q", got, want)
	}
	if webapi.Prefix("x", nil) != nil {
		t.Error("Prefix(nil) != nil")
	}
}
