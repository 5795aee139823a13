package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/rotator"
)

// describe says what the key's drain gate proves, warns when it cannot see
// old-key use, and lists the consumers that attested, with those behind.
func TestDescribeShowsTheGateAndTheConsumers(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	d := &app.KeyDescription{
		Key: app.KeyView{Name: "api", State: "current", Plan: "none", Gate: &rotator.GateProof{
			Key: "api", Proves: "no 401s with the new key for 30s", Warning: "consumers that reload slower than 30s will get 401s"}},
		Consumers: &app.ConsumersView{Key: "api", Current: 3, Horizon: 600, Consumers: []app.ConsumerView{
			{Name: "billing", Generation: 3, GenerationName: "api-v3", State: "current", LastSeen: now.Add(-90 * time.Second).Format(time.RFC3339)},
			{Name: "reports", Generation: 2, GenerationName: "api-v2", State: "behind", LastSeen: now.Add(-2 * time.Minute).Format(time.RFC3339)},
		}},
	}
	var out bytes.Buffer
	if err := describeSections(&out, d, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"proves:      no 401s with the new key for 30s",
		"WARNING:     consumers that reload slower than 30s will get 401s",
		"consumers (current generation 3, horizon 10m",
		"reports", "api-v2", "behind",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, out.String())
		}
	}
}

// describe lists departed owners apart, marked departed, not as owners.
func TestDescribeMarksDepartedOwners(t *testing.T) {
	for name, tc := range map[string]struct {
		owners, departed []string
		want             string
	}{
		"one left":       {owners: []string{"carol@example.com"}, departed: []string{"alice@example.com"}, want: "owners:      carol@example.com (departed: alice@example.com)\n"},
		"nobody left":    {departed: []string{"alice@example.com"}, want: "owners:      (departed: alice@example.com)\n"},
		"nobody departs": {owners: []string{"carol@example.com"}, want: "owners:      carol@example.com\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			d := &app.KeyDescription{Key: app.KeyView{Name: "api", Owners: tc.owners, DepartedOwners: tc.departed, State: "current", Plan: "none"}}
			if err := describeKey(&out, d, time.Now()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("describe:\n%s\nwant the line %q", out.String(), tc.want)
			}
		})
	}
}
