package prometheus

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
)

// Data is what a query template sees.
type Data struct {
	Key     string // the key's name in rekey's configuration
	OldID   string // issuer id of the credential being retired
	NewID   string // issuer id of its replacement
	OldName string // name of the credential being retired (billing-v1)
	NewName string // name of its replacement (billing-v2)
	Since   int64  // unix seconds: start of the drain or of the watch
	Window  string // the configured window as a PromQL duration: 5m, 30s
}

// Escape makes s safe inside a double-quoted PromQL string literal, so that
// a name such as `x"} or vector(0) #` is matched literally instead of
// rewriting the query. Backslashes, double quotes and line breaks are
// escaped as in Go; a single quote becomes \x27, which both quote styles
// accept, so a value inside single quotes cannot end its literal either.
// (Backtick strings have no escapes: never put a value inside backticks.)
func Escape(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer(
	`\`, `\\`, `"`, `\"`, `'`, `\x27`,
	"\n", `\n`, "\r", `\r`, "\t", `\t`,
)

// funcs are the template functions besides text/template's built-ins.
var funcs = template.FuncMap{"promql": Escape}

// safeFields may be printed without promql: the source renders them.
var safeFields = map[string]bool{"Since": true, "Window": true}

// parseQuery parses a query template and checks that every value it prints
// is either rendered by the source ({{.Since}}, {{.Window}}) or escaped
// with promql. An unescaped {{.OldName}} would let a credential name
// inject PromQL (`"} or vector(0)`) and turn the gate's evidence into a
// constant.
func parseQuery(name, text string) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty query")
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		if err := checkEscaped(tt.Root); err != nil {
			return nil, err
		}
	}
	// A field that does not exist ({{promql .Kye}}) parses but fails when
	// rendered: render once with sample values so the typo is a
	// configuration error, not a drain gate that never passes.
	if _, err := render(t, sampleData); err != nil {
		return nil, fmt.Errorf("invalid template (fields: Key, OldID, NewID, OldName, NewName, Since, Window): %w", err)
	}
	return t, nil
}

// sampleData is what a query is test-rendered with when it is parsed.
var sampleData = Data{Key: "key", OldID: "old-id", NewID: "new-id", OldName: "key-v1", NewName: "key-v2", Since: 1, Window: "5m"}

// CheckQuery reports whether text is a query template this source accepts
// as a key's drain.query (or unauthorized query): it parses, every value it
// prints is escaped, and it renders.
func CheckQuery(text string) error {
	if strings.TrimSpace(text) == "" {
		return nil // the source's default query applies
	}
	_, err := parseQuery("query", text)
	return err
}

func checkEscaped(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkEscaped(c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return nil // {{$x := …}} prints nothing; printing $x is checked
		}
		if endsInPromql(n.Pipe) || pipeIsSafe(n.Pipe) {
			return nil
		}
		return fmt.Errorf("%s prints a value unescaped: write it as {{promql …}} inside double quotes, e.g. key_name=\"{{promql .OldName}}\"", n)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode)
	}
	return nil
}

func checkBranch(b *parse.BranchNode) error {
	if err := checkEscaped(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkEscaped(b.ElseList)
	}
	return nil
}

// endsInPromql reports whether the pipeline's output goes through promql.
func endsInPromql(p *parse.PipeNode) bool {
	if len(p.Cmds) == 0 {
		return false
	}
	last := p.Cmds[len(p.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "promql"
}

// pipeIsSafe reports whether every value the pipeline uses is a literal or
// a field the source renders itself.
func pipeIsSafe(p *parse.PipeNode) bool {
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			if !argIsSafe(a) {
				return false
			}
		}
	}
	return true
}

func argIsSafe(a parse.Node) bool {
	switch a := a.(type) {
	case *parse.FieldNode:
		return len(a.Ident) == 1 && safeFields[a.Ident[0]]
	case *parse.PipeNode:
		return pipeIsSafe(a)
	case *parse.IdentifierNode:
		return a.Ident != "call" // a function name; its arguments are checked
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
		return true // written in the configuration itself
	}
	return false // ., $var, chains: could be any value
}

// render executes t with d.
func render(t *template.Template, d Data) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return b.String(), nil
}
