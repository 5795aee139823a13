package app

import (
	"bytes"
	"encoding/json"
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

// An item that does not encode (a time after year 9999) ends the answer
// where it failed, as a document a client cannot read as whole, after the
// items before it in order; the batches still being encoded are dropped.
func TestWriteJSONListStopsAtAnItemThatDoesNotEncode(t *testing.T) {
	items := make([]PlanView, 6*encodeBatch)
	for i := range items {
		items[i] = PlanView{PlanItem: rotator.PlanItem{Key: fmt.Sprintf("k%d", i), Action: "none"}}
	}
	bad := 2*encodeBatch + 3
	items[bad].Due = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := httptest.NewRecorder()
	writeJSONList(rec, "plan", items)
	body := rec.Body.Bytes()
	if json.Valid(body) {
		t.Fatal("the answer reads as a whole document")
	}
	last := fmt.Sprintf(`"key": "k%d"`, bad-1)
	if !bytes.Contains(body, []byte(last)) || bytes.Contains(body, []byte(fmt.Sprintf(`"key": "k%d"`, bad))) ||
		bytes.Contains(body, []byte(fmt.Sprintf(`"key": "k%d"`, 3*encodeBatch))) {
		t.Fatalf("the answer does not stop at item %d:\n...%s", bad, body[max(0, len(body)-300):])
	}
}
