package httpx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// chunked hides the length so that only reading finds the excess.
type chunked struct{ io.Reader }

func TestReadBody(t *testing.T) {
	tests := map[string]struct {
		body    io.Reader
		length  int64
		wantErr error
		wantLen int
	}{
		"empty":                    {body: strings.NewReader(""), wantLen: 0},
		"exactly the limit":        {body: strings.NewReader(strings.Repeat("a", MaxBody)), length: MaxBody, wantLen: MaxBody},
		"one byte over, announced": {body: strings.NewReader(strings.Repeat("a", MaxBody+1)), length: MaxBody + 1, wantErr: ErrTooLarge},
		"one byte over, chunked":   {body: chunked{strings.NewReader(strings.Repeat("a", MaxBody+1))}, length: -1, wantErr: ErrTooLarge},
		"lying content-length":     {body: chunked{strings.NewReader(strings.Repeat("a", MaxBody+10))}, length: 10, wantErr: ErrTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", tc.body)
			r.ContentLength = tc.length
			b, err := ReadBody(httptest.NewRecorder(), r, 0)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && len(b) != tc.wantLen {
				t.Fatalf("read %d bytes, want %d", len(b), tc.wantLen)
			}
		})
	}
}

func TestReadBodyOrFail(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", MaxBody+1)))
	if _, ok := ReadBodyOrFail(w, r, 0); ok || w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("ok=%v code=%d", ok, w.Code)
	}
}

func TestChecks(t *testing.T) {
	w := httptest.NewRecorder()
	if AllowMethod(w, httptest.NewRequest(http.MethodGet, "/", nil), http.MethodPost) || w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET allowed: code=%d allow=%q", w.Code, w.Header().Get("Allow"))
	}
	for ct, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON; charset=utf-8": true,
		"text/plain":                      false,
		"":                                false,
		"application/json; =broken":       false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		if got := RequireMediaType(w, r, "application/json"); got != want {
			t.Errorf("%q: got %v, want %v", ct, got, want)
		}
		if !want && w.Code != http.StatusUnsupportedMediaType {
			t.Errorf("%q: code %d", ct, w.Code)
		}
	}
}

func TestDecodeStrictNeverEchoesValues(t *testing.T) {
	const secret = "ka_live_SECRETSECRETSECRET"
	type body struct {
		Token string `json:"token"`
		N     int    `json:"n"`
	}
	tests := map[string]struct {
		in   string
		want string
	}{
		"valid":             {in: `{"token":"` + secret + `"}`},
		"empty":             {in: ``, want: "empty body"},
		"truncated":         {in: `{"token":"` + secret, want: "truncated JSON"},
		"syntax":            {in: `{"token":"` + secret + `",}`, want: "malformed JSON at offset"},
		"type":              {in: `{"token":"` + secret + `","n":"` + secret + `"}`, want: "n: wrong JSON type"},
		"token as type":     {in: `{"token":1}`, want: "token: wrong JSON type"},
		"unknown field":     {in: `{"token":"x","tokne":"` + secret + `"}`, want: `unknown field "tokne"`},
		"secret as a field": {in: `{"` + secret + `":1}`, want: "unknown field"},
		"trailing data":     {in: `{"token":"x"} {"token":"` + secret + `"}`, want: "trailing data"},
		"trailing garbage":  {in: `{"token":"x"} ` + secret, want: "trailing data"},
		"not an object":     {in: `"` + secret + `"`, want: "wrong JSON type"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b body
			err := DecodeStrict([]byte(tc.in), &b)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, http.StatusTeapot, "no")
	if w.Code != http.StatusTeapot || w.Header().Get("Content-Type") != "application/json" || strings.TrimSpace(w.Body.String()) != `{"error":"no"}` {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
}
