package rotator

import (
	"fmt"
	"slices"
	"strings"
)

// Diagram renders the lifecycle tables as text: each phase, what its step
// does, the side effects it may perform, and where each edge leads. The
// package documentation embeds it, and a test keeps the two equal.
func Diagram() string {
	var b strings.Builder
	for i, lc := range Lifecycles() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s (starts in %s)\n", lc.Name, lc.Start)
		for _, s := range lc.Phases {
			fmt.Fprintf(&b, "  %-18s %s\n", s.Phase, s.Does)
			edges := make([]string, 0, len(s.Next))
			for e := range s.Next {
				edges = append(edges, string(e))
			}
			slices.SortFunc(edges, func(a, b string) int { return strings.Compare(edgeRank(a), edgeRank(b)) })
			var parts []string
			for _, e := range edges {
				to := s.Next[Edge(e)]
				if e == "" {
					parts = append(parts, "→ "+string(to))
					continue
				}
				parts = append(parts, e+" → "+string(to))
			}
			line := "      " + strings.Join(parts, "; ")
			if len(s.Acts) > 0 {
				acts := make([]string, len(s.Acts))
				for j, a := range s.Acts {
					acts[j] = cmpOr(a, "main")
				}
				line += "   [side effects: " + strings.Join(acts, ", ") + "]"
			}
			if !s.Undoable && s.UndoUntilRevoke {
				line += "   [undo until the revoke is issued]"
			}
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// edgeRank orders edges: the usual one first, then alphabetically.
func edgeRank(e string) string {
	if e == "" {
		return ""
	}
	return "~" + e
}
