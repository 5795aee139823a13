package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func event(sev rotator.Severity) rotator.Event {
	return rotator.Event{
		ID:         "ev-1",
		Kind:       rotator.EventHeld,
		Severity:   sev,
		Key:        "kubeadapt",
		RotationID: "rot-7",
		Phase:      rotator.PhaseDraining,
		Trigger:    rotator.TriggerAge,
		Mode:       rotator.ModeStaged,
		Actor:      "policy:maxage",
		Owners:     []string{"ana@example.com", "bo@example.com"},
		Message:    "drain exceeded max_wait",
		Fields:     map[string]string{"unauthorized_rate": "0.4", "fingerprint": "abc123def456", "key": "clash", "generation": "2", "error": "vault: HTTP 503", "errors": "3"},
		At:         time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
	}
}

func TestNotifyWritesJSON(t *testing.T) {
	var buf bytes.Buffer
	n, err := New(DefaultConfig(), slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), event(rotator.SeverityWarning)); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %v\n%s", err, buf.String())
	}
	want := map[string]any{
		"level":             "WARN",
		"msg":               "drain exceeded max_wait",
		"event_id":          "ev-1",
		"kind":              "rotation.held",
		"severity":          "warning",
		"key":               "kubeadapt",
		"rotation":          "rot-7",
		"phase":             "draining",
		"trigger":           "age",
		"mode":              "staged",
		"actor":             "policy:maxage",
		"at":                "2025-03-01T10:00:00Z",
		"unauthorized_rate": "0.4",
		"fingerprint":       "abc123def456",
		"field.key":         "clash",
		"generation":        float64(2), // a number, as in every other line
		"err":               "vault: HTTP 503",
		"error_count":       float64(3),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	owners, _ := rec["owners"].([]any)
	if len(owners) != 2 || owners[0] != "ana@example.com" {
		t.Errorf("owners = %v", rec["owners"])
	}
}

func TestNotifyLevels(t *testing.T) {
	tests := map[string]struct {
		min       string
		severity  rotator.Severity
		wantLevel string // empty: dropped
	}{
		"info at info":             {min: "info", severity: rotator.SeverityInfo, wantLevel: "INFO"},
		"warning at info":          {min: "info", severity: rotator.SeverityWarning, wantLevel: "WARN"},
		"critical at info":         {min: "info", severity: rotator.SeverityCritical, wantLevel: "ERROR"},
		"info below warning":       {min: "warning", severity: rotator.SeverityInfo},
		"warning at warning":       {min: "warning", severity: rotator.SeverityWarning, wantLevel: "WARN"},
		"warning below critical":   {min: "critical", severity: rotator.SeverityWarning},
		"critical at critical":     {min: "critical", severity: rotator.SeverityCritical, wantLevel: "ERROR"},
		"unknown counts as a warn": {min: "warning", severity: "odd", wantLevel: "WARN"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := New(Config{Level: tc.min}, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(context.Background(), event(tc.severity)); err != nil {
				t.Fatal(err)
			}
			if tc.wantLevel == "" {
				if buf.Len() != 0 {
					t.Fatalf("event written: %s", buf.String())
				}
				return
			}
			var rec struct{ Level string }
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Level != tc.wantLevel {
				t.Fatalf("level %s, want %s", rec.Level, tc.wantLevel)
			}
		})
	}
}

func TestNotifyMinimalEvent(t *testing.T) {
	var buf bytes.Buffer
	n, err := New(DefaultConfig(), slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), rotator.Event{Kind: rotator.EventOrphan, Severity: rotator.SeverityInfo}); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != rotator.EventOrphan {
		t.Fatalf("msg = %v, want the kind", rec["msg"])
	}
	for _, k := range []string{"rotation_id", "owners", "at", "actor"} {
		if _, ok := rec[k]; ok {
			t.Errorf("empty %s written", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		level   string
		wantErr string
	}{
		"info":     {level: "info"},
		"warning":  {level: "warning"},
		"critical": {level: "critical"},
		"empty":    {level: "", wantErr: "level: must be"},
		"debug":    {level: "debug", wantErr: `level: must be info, warning or critical, not "debug"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Config{Level: tc.level}.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// An event of a waiting rotation says what it waits for.
func TestNotifyWritesWaiting(t *testing.T) {
	var buf bytes.Buffer
	n, err := New(DefaultConfig(), slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ev := event(rotator.SeverityWarning)
	ev.Waiting = &rotator.Waiting{Reason: rotator.WaitTrafficError, Detail: "traffic source prom does not answer"}
	if err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["waiting"] != "traffic_error" || rec["waiting_detail"] != "traffic source prom does not answer" {
		t.Fatalf("waiting = %v, waiting_detail = %v", rec["waiting"], rec["waiting_detail"])
	}
}
