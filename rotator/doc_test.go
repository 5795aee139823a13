package rotator_test

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

var updateDoc = flag.Bool("update-doc", false, "rewrite the diagram in doc.go from the lifecycle tables")

// TestDocDiagramMatchesTables keeps the package documentation's diagram
// equal to the lifecycle tables it describes.
func TestDocDiagramMatchesTables(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)// \(diagram start\)\n(.*?)// \(diagram end\)\n`)
	m := re.FindSubmatchIndex(src)
	if m == nil {
		t.Fatal("doc.go has no (diagram start) / (diagram end) block")
	}
	var want strings.Builder
	want.WriteString("//\n") // gofmt sets a preformatted block apart
	for _, l := range strings.Split(strings.TrimRight(rotator.Diagram(), "\n"), "\n") {
		if l == "" {
			want.WriteString("//\n")
			continue
		}
		want.WriteString("//\t" + l + "\n")
	}
	want.WriteString("//\n")
	got := string(src[m[2]:m[3]])
	if got == want.String() {
		return
	}
	if *updateDoc {
		out := string(src[:m[2]]) + want.String() + string(src[m[3]:])
		if err := os.WriteFile("doc.go", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("doc.go's diagram differs from the lifecycle tables; run: go test ./rotator -run TestDocDiagramMatchesTables -update-doc\n got:\n%s\nwant:\n%s", got, want.String())
}
