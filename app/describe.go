package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// KeyDescription is `rekey describe KEY` and GET /v1/keys/{key}: the key's
// policy, its credentials by generation, what each sink holds (generation
// names, never values), its recent rotations and when it is next due.
// Durations are numbers of seconds.
type KeyDescription struct {
	Key         KeyView          `json:"key"`
	Description string           `json:"description,omitempty"`
	Team        string           `json:"team,omitempty"`
	Policy      PolicyView       `json:"policy"`
	Credentials []CredentialView `json:"credentials"`
	Sinks       []SinkView       `json:"sinks"`
	History     []RotationView   `json:"history"`
	// Consumers are the consumers that attested a generation of the key
	// (GET /v1/keys/{key}/consumers), omitted when none ever did.
	Consumers *ConsumersView `json:"consumers,omitempty"`
}

// PolicyView is a key's effective policy (defaults applied).
type PolicyView struct {
	Schedule  string        `json:"schedule"`
	MaxAge    float64       `json:"max_age,omitempty"`
	Windows   int           `json:"windows,omitempty"`
	Verify    bool          `json:"verify"`
	Bootstrap bool          `json:"bootstrap"`
	Approval  *ApprovalView `json:"approval,omitempty"`
	Drain     *DrainView    `json:"drain,omitempty"`
	Watch     float64       `json:"watch_period,omitempty"`
}

// ApprovalView is a key's approval gates.
type ApprovalView struct {
	Gates          []rotator.Gate `json:"gates"`
	Approvers      []string       `json:"approvers,omitempty"`
	Required       int            `json:"required"`
	RevokeRequired int            `json:"revoke_required,omitempty"`
	ExpireAfter    float64        `json:"expire_after,omitempty"`
}

// DrainView is a key's drain gate.
type DrainView struct {
	Source       string  `json:"source"`
	QuietPeriod  float64 `json:"quiet_period"`
	MaxWait      float64 `json:"max_wait"`
	PollInterval float64 `json:"poll_interval"`
}

// CredentialView is one generation of a key: never its value, and only
// the first characters of its fingerprint.
type CredentialView struct {
	Generation  int                     `json:"generation"`
	Name        string                  `json:"name"`
	IssuerID    string                  `json:"issuer_id,omitempty"`
	Fingerprint string                  `json:"fingerprint,omitempty"`
	State       rotator.CredentialState `json:"state"`
	Age         float64                 `json:"age"`
	CreatedAt   string                  `json:"created_at"`
	RevokedAt   string                  `json:"revoked_at,omitempty"`
	RotationID  string                  `json:"rotation_id,omitempty"`
	// Alert: an emergency is about this live generation ("LEAKED: exposed,
	// still live until revoked").
	Alert string `json:"alert,omitempty"`
}

// SinkView is what one sink target holds, as generation names.
type SinkView struct {
	Sink     string `json:"sink"`
	Target   string `json:"target"`
	Exists   bool   `json:"exists"`
	Managed  bool   `json:"managed"`
	Current  string `json:"current,omitempty"`
	Pending  string `json:"pending,omitempty"`
	Previous string `json:"previous,omitempty"`
	Error    string `json:"error,omitempty"`
}

// fingerprintPrefix is how much of a fingerprint describe shows: enough
// to tell generations apart and match a log line, not the whole digest.
const fingerprintPrefix = 12

// sinkInspectTimeout bounds each sink's Inspect call in describe.
const sinkInspectTimeout = 10 * time.Second

// Describe describes one key; history is the number of recent rotations.
func (d *Daemon) Describe(ctx context.Context, name string, history int, now time.Time) (*KeyDescription, error) {
	k, ok := d.Engine.Key(name)
	if !ok {
		return nil, fmt.Errorf("unknown key %q: %w", name, rotator.ErrNotFound)
	}
	out := &KeyDescription{Team: d.teams[name], Credentials: []CredentialView{}, Sinks: []SinkView{}, History: []RotationView{}}
	out.Policy = d.policyView(k)
	for _, ck := range d.Config.Keys {
		if ck.Name == name {
			out.Description = ck.Description
		}
	}
	creds, err := d.Store.Credentials(ctx, name)
	if err != nil {
		return nil, err
	}
	// The key's state from its own records, not every key's: describe
	// costs the same over 10 or 100,000 keys.
	st := rotator.KeyState{Key: name}
	for _, c := range creds {
		switch c.State {
		case rotator.CredCurrent:
			st.Current = c
		case rotator.CredPrevious:
			st.Previous = append(st.Previous, c)
		}
	}
	active, err := d.Store.ListRotations(ctx, rotator.RotationFilter{Key: name, ActiveOnly: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(active) > 0 {
		st.Active = active[0]
	}
	it, _ := d.Engine.PlanKey(ctx, name, st, now)
	out.Key = d.keyView(ctx, k, st, it, now)
	byFP := map[string]string{}
	for _, c := range creds {
		fp := c.Fingerprint
		if len(fp) > fingerprintPrefix {
			fp = fp[:fingerprintPrefix]
		}
		if c.Fingerprint != "" {
			byFP[c.Fingerprint] = c.Name
		}
		out.Credentials = append(out.Credentials, CredentialView{Generation: c.Generation, Name: c.Name, IssuerID: c.IssuerID, Fingerprint: fp,
			State: c.State, Age: now.Sub(c.CreatedAt).Seconds(), CreatedAt: rfc3339(c.CreatedAt), RevokedAt: rfc3339(c.RevokedAt), RotationID: c.RotationID,
			Alert: exposedAlert(st.Active, c)})
	}
	for _, b := range k.Sinks {
		out.Sinks = append(out.Sinks, inspectSink(ctx, b, byFP))
	}
	if cv, err := d.ConsumerViews(ctx, name, now); err != nil {
		return nil, err
	} else if len(cv.Consumers) > 0 {
		out.Consumers = &cv
	}
	rots, err := d.Store.ListRotations(ctx, rotator.RotationFilter{Key: name, Limit: history})
	if err != nil {
		return nil, err
	}
	for _, r := range rots {
		out.History = append(out.History, ViewRotation(r))
	}
	return out, nil
}

func (d *Daemon) policyView(k *rotator.Key) PolicyView {
	p := PolicyView{Schedule: d.Config.Daemon.Schedule, MaxAge: k.MaxAge.Seconds(), Windows: len(k.Windows), Verify: k.Verify,
		Bootstrap: k.Bootstrap, Watch: k.Watch.Period.Seconds()}
	for _, ck := range d.Config.Keys {
		if ck.Name == k.Name && ck.Schedule != "" {
			p.Schedule = ck.Schedule
		}
	}
	if a := k.Approval; len(a.Gates) > 0 {
		p.Approval = &ApprovalView{Gates: a.Gates, Approvers: a.Approvers, Required: a.RequiredApprovals(rotator.GateStart),
			RevokeRequired: a.RevokeRequired, ExpireAfter: a.ExpireAfter.Seconds()}
	}
	if dr := k.Drain; dr.SourceName != "" {
		p.Drain = &DrainView{Source: dr.SourceName, QuietPeriod: dr.QuietPeriod.Seconds(), MaxWait: dr.MaxWait.Seconds(), PollInterval: dr.PollInterval.Seconds()}
	}
	return p
}

// inspectSink asks a sink what it holds and names each value by the
// generation whose fingerprint it has ("unknown" for a value rekey did not
// mint). A sink that cannot answer says why; describe goes on.
func inspectSink(ctx context.Context, b rotator.SinkBinding, byFP map[string]string) SinkView {
	v := SinkView{Sink: b.SinkName, Target: b.Target.Path}
	ctx, cancel := context.WithTimeout(ctx, sinkInspectTimeout)
	defer cancel()
	st, err := b.Sink.Inspect(ctx, b.Target)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	name := func(fp string) string {
		if fp == "" {
			return ""
		}
		if n, ok := byFP[fp]; ok {
			return n
		}
		return "unknown (not minted by rekey)"
	}
	v.Exists, v.Managed, v.Current, v.Pending, v.Previous = st.Exists, st.Managed, name(st.Current), name(st.Pending), name(st.Previous)
	return v
}

func (a *admin) describeKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("key")
	// Scope first: a principal scoped to other keys learns nothing of
	// which keys exist.
	if !a.allow(w, principalOf(r), auth.ActRead, name) {
		return
	}
	if _, ok := a.d.Engine.Key(name); !ok {
		writeError(w, http.StatusNotFound, "unknown key "+strconv.Quote(name))
		return
	}
	history := 10
	if s := r.URL.Query().Get("history"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "history must be an integer between 1 and 1000")
			return
		}
		history = n
	}
	desc, err := a.d.Describe(r.Context(), name, history, timeNow())
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, desc)
}
