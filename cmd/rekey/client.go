package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/auth"
)

// client speaks the admin API: to the daemon (REKEY_ADDR), or in process
// over the store in break-glass mode. Both answer the same JSON and the
// same errors, so every verb is written once.
type client struct {
	http *http.Client
	base string // scheme and host; paths start with /v1/
	// where names the daemon for errors ("the daemon at …" or the store).
	where string
	token string
	// local is the daemon built in process in break-glass mode (nil when
	// talking to a daemon); step drives one rotation to its next wait
	// (rotate --wait), and nothing else.
	local *app.Daemon
	step  func(ctx context.Context, id string)
	// principal is who acts in process (break-glass; nil otherwise).
	principal *auth.Principal
}

func (cl *client) Close() {
	if cl.local != nil {
		_ = cl.local.Close()
	}
}

// do sends a request (body: nil, an io.Reader sent as is, or a value sent
// as JSON) and returns the answer's body; an error answer is an *apiError.
// out, if not nil, receives the decoded answer.
func (cl *client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, rd)
	if err != nil {
		return nil, err
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("cannot reach %s: %w (set REKEY_CACERT or --cacert to the CA that signed the daemon's certificate)", cl.where, unwrapURL(err))
		}
		return nil, fmt.Errorf("cannot reach %s: %w", cl.where, unwrapURL(err))
	}
	defer resp.Body.Close()
	var raw []byte
	if lb, ok := resp.Body.(localBody); ok {
		raw = lb.b.Bytes() // in process: the answer is already in memory
	} else if raw, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20)); err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Never followed (see dial); a proxy or load balancer in front of
		// the daemon answered instead of it.
		return raw, fmt.Errorf("%s %s: %s answered HTTP %d redirecting to %q; rekey does not follow redirects (a request body could carry a secret elsewhere): set REKEY_ADDR to the final address",
			method, path, cl.where, resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(raw, []byte("HTTP request to an HTTPS server")) {
		return raw, fmt.Errorf("%s %s: %s speaks HTTPS: set REKEY_ADDR to https://… (and REKEY_CACERT to the CA of its certificate)", method, path, cl.where)
	}
	if resp.StatusCode == http.StatusNotFound && !json.Valid(raw) {
		// Every answer of the admin API is JSON; a plain "404 page not
		// found" is another server, or rekey's public listener.
		return raw, fmt.Errorf("%s %s: %s has no rekey admin API (HTTP 404 %q): is REKEY_ADDR the public listener (daemon.listen)? Point it at daemon.admin_listen",
			method, path, cl.where, strings.TrimSpace(string(raw)))
	}
	if resp.StatusCode >= 400 {
		return raw, answerError(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// answerError is the *apiError of an error answer.
func answerError(status int, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(raw))
	}
	return &apiError{status: status, msg: e.Error}
}

func (cl *client) get(ctx context.Context, path string, out any) ([]byte, error) {
	return cl.do(ctx, http.MethodGet, path, nil, out)
}

func (cl *client) post(ctx context.Context, path string, body, out any) ([]byte, error) {
	if body == nil {
		body = struct{}{}
	}
	return cl.do(ctx, http.MethodPost, path, body, out)
}

// unwrapURL drops the *url.Error wrapper, which repeats the URL.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// handlerTransport serves requests with an in-process handler (the
// break-glass API).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	t.h.ServeHTTP(rec, req)
	return &http.Response{StatusCode: rec.code, Status: http.StatusText(rec.code), Header: rec.header, Body: localBody{&rec.body},
		Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(rec.body.Len())}, nil
}

// localBody is the body of an in-process answer; client.do takes its
// bytes without copying them (a plan over 100,000 keys is tens of MB).
type localBody struct{ b *bytes.Buffer }

func (l localBody) Read(p []byte) (int, error) { return l.b.Read(p) }
func (l localBody) Close() error               { return nil }

// recorder is the http.ResponseWriter of handlerTransport.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// print prints the answer to GET path (-o json). In process, the answer
// streams from the handler through the indenter to w and is never held
// whole (a plan over 100,000 keys is 27 MB); from a daemon it is read,
// then printed.
func (cl *client) print(ctx context.Context, path string, w io.Writer) error {
	ht, ok := cl.http.Transport.(handlerTransport)
	if !ok {
		raw, err := cl.get(ctx, path, nil)
		if err != nil {
			return err
		}
		return printRaw(w, raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.base+path, nil)
	if err != nil {
		return err
	}
	sw := &streamWriter{recorder: recorder{header: http.Header{}, code: http.StatusOK}, out: newIndenter(w)}
	ht.h.ServeHTTP(sw, req)
	if sw.code >= 400 {
		return answerError(sw.code, sw.body.Bytes())
	}
	return sw.out.Close()
}

// streamWriter is the http.ResponseWriter of client.print: a successful
// answer goes to out as it is written, an error answer is kept.
type streamWriter struct {
	recorder
	out *indenter
}

func (s *streamWriter) Write(b []byte) (int, error) {
	s.wrote = true
	if s.code >= 400 {
		return s.body.Write(b)
	}
	return s.out.Write(b)
}
