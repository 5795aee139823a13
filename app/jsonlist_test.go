package app

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// writeJSONList must answer exactly what writeJSON answers for the same
// list: clients (and scripts over `-o json`) see no difference.
func TestWriteJSONListMatchesWriteJSON(t *testing.T) {
	age := int64(42)
	full := PlanView{PlanItem: rotator.PlanItem{Key: "a<b>&c", Action: "rotate", Due: time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC),
		Warnings: []string{"w1", "w2"}, Lingering: []rotator.Lingering{{Generation: 1, Name: "n", RevokedBy: "x"}}}, Age: &age}
	many := make([]PlanView, 3*encodeBatch+7) // several batches on several goroutines
	for i := range many {
		many[i] = full
		many[i].Key = fmt.Sprintf("k%d", i)
	}
	for name, items := range map[string][]PlanView{
		"many":  many,
		"nil":   nil,
		"empty": {},
		"one":   {full},
		"three": {full, {PlanItem: rotator.PlanItem{Key: "k2", Action: "none"}}, full},
	} {
		t.Run(name, func(t *testing.T) {
			want, got := httptest.NewRecorder(), httptest.NewRecorder()
			writeJSON(want, 200, map[string]any{"plan": items})
			writeJSONList(got, "plan", items)
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("got\n%s\nwant\n%s", got.Body.Bytes(), want.Body.Bytes())
			}
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Fatalf("status %d %q, want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
		})
	}
}
