package scanners

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/internal/textcheck"
)

// A scanned repository's file names and a scanner's rule names are anyone's
// to choose; they reach rekey show, notifications and the CLI's table and
// errors. Control characters in them are escaped — not refused, which
// would let the author of such a file name suppress the report. On the code
// before, they passed through raw.
func TestControlCharactersAreEscaped(t *testing.T) {
	reps, err := Parse("gitleaks", strings.NewReader(`[{"Secret":"`+kaToken+`","File":"a\u001b[2K\r\u001b[32mall good.env","StartLine":3,"RuleID":"rule\u202e"}]`))
	if err != nil || len(reps) != 1 {
		t.Fatalf("reports %+v, err %v", reps, err)
	}
	if r := reps[0]; r.URL != `a\x1b[2K\r\x1b[32mall good.env:3` || r.Type != `rule\u202e` {
		t.Fatalf("url %q type %q, want them escaped", r.URL, r.Type)
	}
	_, err = Parse("trufflehog", strings.NewReader(`{"DetectorName":"Kubeadapt","SourceMetadata":{"Data":{"Filesystem":{"file":"x\u001b]8;;https://evil\u001b\\","line":1}}}}`))
	if err == nil || !textcheck.Printable(err.Error()) || !strings.Contains(err.Error(), `x\x1b]8;;https://evil\x1b\`) {
		t.Fatalf("err %q, want the location escaped", err)
	}
}
