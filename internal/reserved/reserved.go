// Package reserved is the rule of which identities no person may hold:
// the names rekey records for its own actions, anything in the
// "kind:name" form of its channels and sources, and what reads as either
// in an audit trail. auth (tokens, OIDC, Slack deciders) and the inbound
// webhooks that name people (the departure webhook) share it; rotator
// mirrors the names (it imports nothing of this module).
package reserved

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// Names are the names rekey records for its own actions: the engine
// ("rekey"), the scheduler, and the bootstrap token ("admin").
var Names = []string{"rekey", "scheduler", "admin"}

// Check refuses an identity no person may hold: one of Names, or anything
// in the "kind:name" form rekey uses for channels and sources
// (break-glass:…, exposure:…, departure:…, github:…, slack:…). A token or
// an OIDC identity with such a name would make the audit trail attribute
// a person's actions to rekey itself; a departure naming one would make
// rekey refuse its own actions.
//
// What reads the same in an audit trail is the same: an identity with an
// invisible or control character (zero-width space, word joiner, a
// bidirectional override), with compatibility characters NFKC would fold
// (fullwidth letters, a fullwidth colon), or whose Unicode confusable
// skeleton (TR39) is a reserved name's ("ѕcheduler" with a Cyrillic s) is
// refused too.
func Check(id string) error {
	c := strings.ToLower(strings.TrimSpace(id))
	for _, r := range c {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) && r != ' ' {
			return fmt.Errorf("identity %q contains an invisible or control character (%U): it would read as another name in the audit trail", c, r)
		}
	}
	if norm.NFKC.String(c) != c {
		return fmt.Errorf("identity %q contains compatibility characters (fullwidth or styled forms): write it as %q", c, norm.NFKC.String(c))
	}
	skeleton := confusables.Skeleton(c)
	for _, r := range Names {
		if c == r || skeleton == confusables.Skeleton(r) {
			return fmt.Errorf("identity %q is reserved: rekey records its own actions under %q", c, r)
		}
	}
	if kind, _, ok := strings.Cut(skeleton, ":"); ok && !strings.Contains(c, ":") {
		return fmt.Errorf("identity %q is reserved: it reads as the %q form of rekey's own channels and sources", c, kind+":")
	}
	if kind, _, ok := strings.Cut(c, ":"); ok {
		return fmt.Errorf("identity %q is reserved: the %q form names rekey's own channels and sources (break-glass:, exposure:, departure:, github:, slack:…), never a person; map it to a person's identity in auth.identities",
			c, kind+":")
	}
	return nil
}
