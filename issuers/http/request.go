package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"strings"
	"text/template"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
	"github.com/rekeyhq/rekey/rotator"
)

// Data is what request templates see.
type Data struct {
	Key        string
	Name       string
	Generation int
	ID         string
	RotationID string
	PreviousID string
	Params     map[string]any
	// IdempotencyKey is the mint intent's key (mint only), for APIs that
	// take it in the body rather than in a header.
	IdempotencyKey string
}

// pathData is Data for the path template: the ids an issuer returned are
// Segments, path-escaped wherever the template writes them, so an id such
// as "../../admin/users/1" or "x?force=true" stays one segment of the URL
// even where the configuration wrote {{.ID}} without pathescape.
type pathData struct {
	Key        string
	Name       string
	Generation int
	ID         tmpl.Segment
	RotationID string
	PreviousID tmpl.Segment
	Params     map[string]any
	// IdempotencyKey, for an API that takes it in the query
	// (?idempotency_key={{urlquery .IdempotencyKey}}).
	IdempotencyKey string
}

func (d Data) forPath() pathData {
	return pathData{Key: d.Key, Name: d.Name, Generation: d.Generation, ID: tmpl.Segment(d.ID),
		RotationID: d.RotationID, PreviousID: tmpl.Segment(d.PreviousID), Params: d.Params, IdempotencyKey: d.IdempotencyKey}
}

// dotSegment reports whether the rendered path has a "." or ".." segment
// (also percent-encoded, which servers normalise alike): escaping cannot
// make an id "." or ".." safe, and ResolveReference would remove it and
// the segment before it, sending the request to the parent resource.
func dotSegment(escapedPath string) bool {
	for _, seg := range strings.Split(escapedPath, "/") {
		if u, err := url.PathUnescape(seg); err == nil && (u == "." || u == "..") {
			return true
		}
	}
	return false
}

// secretHeader is a compiled Auth.
type secretHeader struct {
	name   string
	prefix string
	ref    secretref.Ref
}

// request is a compiled Request.
type request struct {
	verb    string // mint, revoke, list: for messages
	method  string
	path    *template.Template
	headers map[string]*template.Template
	body    *template.Template // nil: no body
	success webapi.StatusSet
	retry   webapi.StatusSet
}

func compile(verb string, r Request, defSuccess webapi.StatusSet) *request {
	// Validate has accepted r: the parse errors below cannot happen.
	c := &request{
		verb:    verb,
		method:  strings.ToUpper(r.Method),
		headers: compileHeaders(verb+".headers", r.Headers),
	}
	c.path, _ = tmpl.Parse(verb+".path", r.Path)
	if r.Body != "" {
		c.body, _ = tmpl.Parse(verb+".body", r.Body)
	}
	success, _ := r.Success.Parse("success")
	retry, _ := r.Retry.Parse("retry")
	c.success, c.retry = success.Or(defSuccess), retry.Or(webapi.DefaultRetry)
	return c
}

func compileHeaders(field string, h map[string]string) map[string]*template.Template {
	out := make(map[string]*template.Template, len(h))
	for name, v := range h {
		out[name], _ = tmpl.Parse(field+"."+name, v)
	}
	return out
}

// send renders r with d and performs it. what names the call in errors.
// It returns the answer whatever its status; the caller decides.
func (is *Issuer) send(ctx context.Context, r *request, d Data, what string) (*nethttp.Request, webapi.Response, error) {
	invalid := func(err error) error {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
	}
	p, err := tmpl.Render(r.path, d.forPath())
	if err != nil {
		return nil, webapi.Response{}, invalid(err)
	}
	ref, err := url.Parse(strings.TrimSpace(p))
	if err != nil {
		return nil, webapi.Response{}, invalid(fmt.Errorf("%s.path does not render a valid URL", r.verb))
	}
	if dotSegment(ref.EscapedPath()) {
		// Refused, not escaped: the credential stays recorded with its id
		// and the rotation stops for a person, who revokes it by hand.
		return nil, webapi.Response{}, invalid(fmt.Errorf("%s.path renders a '.' or '..' segment (an issuer id of %q cannot name a URL path segment; act on it by hand)", r.verb, dotID(d)))
	}
	u := is.base.ResolveReference(ref)

	var body io.Reader
	if r.body != nil {
		b, err := tmpl.Render(r.body, d)
		if err != nil {
			return nil, webapi.Response{}, invalid(err)
		}
		if !json.Valid([]byte(b)) {
			return nil, webapi.Response{}, invalid(fmt.Errorf("%s.body does not render valid JSON (encode values with json: {{json .Name}})", r.verb))
		}
		body = bytes.NewReader([]byte(b))
	}
	req, err := nethttp.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, webapi.Response{}, invalid(fmt.Errorf("build %s request: invalid method or URL", r.verb))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, hs := range []map[string]*template.Template{is.headers, r.headers} {
		for name, t := range hs {
			v, err := tmpl.Render(t, d)
			if err != nil {
				return nil, webapi.Response{}, invalid(err)
			}
			req.Header.Set(name, v)
		}
	}
	if r.verb == "mint" && is.idemHeader != "" && d.IdempotencyKey != "" {
		v, ok := sfString(d.IdempotencyKey)
		if !ok {
			return nil, webapi.Response{}, invalid(errors.New("the idempotency key is not printable ASCII"))
		}
		req.Header.Set(is.idemHeader, v)
	}
	for _, sh := range is.auth {
		tok, err := sh.ref.Resolve()
		if err != nil {
			return nil, webapi.Response{}, rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("%s: admin credential for %s: %w", what, sh.name, err))
		}
		v := sh.prefix + tok.Reveal()
		if strings.ContainsAny(v, "\r\n") {
			return nil, webapi.Response{}, rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("%s: admin credential for %s contains a line break", what, sh.name))
		}
		req.Header.Set(sh.name, v)
	}
	resp, err := webapi.Send(is.client, req, what)
	return req, resp, err
}

// fail classifies an answer whose status is not a success.
func (is *Issuer) fail(what string, r *request, req *nethttp.Request, resp webapi.Response) error {
	e := &webapi.StatusError{
		What:   what,
		Method: req.Method,
		URL:    webapi.Redact(req.URL),
		Status: resp.Status,
		Hint:   webapi.AdminHint(resp.Status),
	}
	return webapi.Classify(e, resp.Header, r.retry, is.now())
}

// dotID is the id that is "." or "..", for the message.
func dotID(d Data) string {
	for _, id := range []string{d.ID, d.PreviousID} {
		if id == "." || id == ".." {
			return id
		}
	}
	return ""
}

// sfString serializes v as an RFC 8941 String (the syntax the
// Idempotency-Key draft requires): quoted, with \ and " escaped. It
// refuses anything but printable ASCII.
func sfString(v string) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e {
			return "", false
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), true
}
