package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(read(t, "deploy/grafana/rekey.json")), &d); err != nil {
		t.Fatalf("deploy/grafana/rekey.json is not valid JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("deploy/grafana/rekey.json: want a uid, a title and panels, got %+v", d)
	}
	return d
}

var metricRef = regexp.MustCompile(`\brekey_[a-z0-9_]+`)

// TestDashboardMetrics: the dashboard is valid JSON, every panel queries the
// data source variable, and every rekey_ metric it queries is documented in
// docs/METRICS.md (exported, or proposed).
func TestDashboardMetrics(t *testing.T) {
	d := loadDashboard(t)
	exported, proposed := documentedMetrics(t)
	ids := map[int]string{}
	queried := map[string]bool{}
	for _, p := range d.Panels {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: want datasource uid ${datasource} (the dashboard's variable)", p.Title)
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, `job=~"$job"`) {
				t.Errorf("panel %q query %s: every selector should filter on job=~\"$job\": %s", p.Title, q.RefID, q.Expr)
			}
			for _, m := range metricRef.FindAllString(q.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && exported[b] {
						base = b
					}
				}
				queried[base] = true
				if !exported[base] && !proposed[base] {
					t.Errorf("panel %q queries %s, which docs/METRICS.md does not list", p.Title, m)
				}
			}
		}
	}
	for m := range exported {
		if !queried[m] {
			t.Logf("note: the dashboard does not show %s", m)
		}
	}
}

// TestDashboardQueriesParse hands every query to promtool (as recording
// rules, Grafana's variables replaced) so a PromQL syntax error fails here
// rather than in someone's Grafana.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (scripts/ci-deps.sh installs it): PromQL syntax not checked")
	}
	d := loadDashboard(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$job", ".*")
	n := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			n++
			expr, _ := json.Marshal(vars.Replace(q.Expr))
			fmt.Fprintf(&b, "      - record: dashboard:panel%d:%s\n        expr: %s\n", p.ID, q.RefID, expr)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboard's %d queries: %v\n%s", n, err, out)
	}
}
