package http

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
)

// keyField is the template field that carries the mint intent's
// idempotency key.
const keyField = "IdempotencyKey"

// keyTemplates names the templates of cfg that a mint renders and that
// use {{.IdempotencyKey}}: the mint path (a query), body and headers, and
// the headers common to every request. Whichever carries the key, the API
// may honour it — replay the credential it created for it — and the
// engine must know (IdempotentMinter): otherwise it revokes what a
// timed-out mint created and mints again with the same key, and the API
// hands back the revoked credential.
func keyTemplates(c Config) []string {
	var out []string
	check := func(field, text string) {
		if t, err := tmpl.Parse(field, text); err == nil && usesField(t, keyField) {
			out = append(out, field)
		}
	}
	check("mint.path", c.Mint.Path)
	check("mint.body", c.Mint.Body)
	for _, name := range slices.Sorted(maps.Keys(c.Mint.Headers)) {
		check("mint.headers."+name, c.Mint.Headers[name])
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		check("headers."+name, c.Headers[name])
	}
	return out
}

// usesField reports whether t refers to the data field name anywhere: as
// .Name, $.Name, or a field of a chain, in any action, pipeline, branch
// or defined template.
func usesField(t *template.Template, name string) bool {
	for _, tt := range t.Templates() {
		if tt.Tree != nil && nodeUses(tt.Tree.Root, name) {
			return true
		}
	}
	return false
}

func nodeUses(n parse.Node, name string) bool {
	if n == nil {
		return false
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if nodeUses(c, name) {
				return true
			}
		}
	case *parse.ActionNode:
		return pipeUses(n.Pipe, name)
	case *parse.IfNode:
		return pipeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.RangeNode:
		return pipeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.WithNode:
		return pipeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.TemplateNode:
		return pipeUses(n.Pipe, name)
	case *parse.PipeNode:
		return pipeUses(n, name)
	case *parse.CommandNode:
		for _, a := range n.Args {
			if nodeUses(a, name) {
				return true
			}
		}
	case *parse.FieldNode:
		return slices.Contains(n.Ident, name)
	case *parse.VariableNode:
		return slices.Contains(n.Ident, name)
	case *parse.ChainNode:
		return slices.Contains(n.Field, name) || nodeUses(n.Node, name)
	}
	return false
}

func pipeUses(p *parse.PipeNode, name string) bool {
	if p == nil {
		return false
	}
	for _, c := range p.Cmds {
		if nodeUses(c, name) {
			return true
		}
	}
	return false
}

// validateIdempotency checks the idempotency key settings of mint: a header
// name that no other setting sends; a window only where the key is sent;
// and, where a template sends it, an explicit window — the operator's
// statement that the API honours the key, which turns the replay path on.
func (c Config) validateIdempotency(secretNames map[string]bool) error {
	m := c.Mint
	h := m.IdempotencyKeyHeader
	inTemplates := keyTemplates(c)
	var errs []error
	switch {
	case h == "":
		if len(inTemplates) > 0 && m.IdempotencyWindow == 0 {
			errs = append(errs, fmt.Errorf("mint.idempotency_window: required because %s sends {{.IdempotencyKey}}: set it to how long the API keeps a key (rekey then resumes a lost mint by asking again with the same key), or stop sending the key", strings.Join(inTemplates, ", ")))
		}
		if len(inTemplates) == 0 && m.IdempotencyWindow != 0 {
			errs = append(errs, errors.New("mint.idempotency_window: needs mint.idempotency_key_header or a mint template that sends {{.IdempotencyKey}}"))
		}
	case !webapi.ValidToken(h):
		errs = append(errs, fmt.Errorf("mint.idempotency_key_header: %q is not a header name", h))
	case secretNames[strings.ToLower(h)]:
		errs = append(errs, fmt.Errorf("mint.idempotency_key_header: %s is set by auth or secret_headers", h))
	default:
		for field, hs := range map[string]map[string]string{"headers": c.Headers, "mint.headers": m.Headers} {
			for name := range hs {
				if strings.EqualFold(name, h) {
					errs = append(errs, fmt.Errorf("mint.idempotency_key_header: %s is also set by %s", h, field))
				}
			}
		}
	}
	if m.IdempotencyWindow < 0 {
		errs = append(errs, errors.New("mint.idempotency_window: must not be negative"))
	}
	return errors.Join(errs...)
}
