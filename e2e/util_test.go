package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func httpNewRequest(method, url string, body io.Reader) (*http.Request, error) {
	return http.NewRequest(method, url, body)
}

func httpDo(req *http.Request) (rawResp, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rawResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResp{status: resp.StatusCode, body: string(b)}, nil
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// scanForSecrets searches everything the run produced except the sinks
// (where secrets belong) for every secret value the sinks ever held:
// daemon logs, the SQLite database and its WAL, the issuer ledger, every
// webhook notification, every CLI and admin API answer. Invariant 3.
func (w *world) scanForSecrets() {
	w.t.Helper()
	w.collectSecrets()
	var secrets []string
	secretsSeen.Range(func(k, _ any) bool { secrets = append(secrets, k.(string)); return true })
	if len(secrets) == 0 {
		w.t.Fatal("secret scan: no secret was observed in the sinks; the scan would prove nothing")
	}
	hay := map[string]string{}
	for _, f := range append(append([]string{}, w.logs...), w.dir+"/rekey.db", w.dir+"/rekey.db-wal", w.dir+"/ledger.json") {
		if b, err := os.ReadFile(f); err == nil {
			hay[f] = string(b)
		}
	}
	bodies, bad := w.notifications()
	if bad > 0 {
		w.t.Errorf("%d notifications with a bad signature", bad)
	}
	if ids := w.undelivered(); len(ids) > 0 {
		w.t.Errorf("webhook deliveries cut short by a kill and never delivered again: %v", ids)
	}
	if len(bodies) == 0 {
		w.t.Error("secret scan: no notification was received")
	}
	for i, b := range bodies {
		hay["notification "+string(rune('0'+i%10))] += string(b)
	}
	hay["cli and api output"] = w.output()
	for name, h := range hay {
		for _, s := range secrets {
			if strings.Contains(h, s) {
				w.t.Errorf("secret scan: a minted secret appears in %s", name)
			}
		}
	}
}
