package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// ClusterView is the cluster as the store knows it: every daemon sharing
// it, its last heartbeat (the database's time), its version and the
// rotations whose lease it holds. GET /v1/cluster and `rekey cluster`.
type ClusterView struct {
	// Self is the answering process's instance id ("" for the CLI).
	Self string `json:"self,omitempty"`
	// LeaseTTL is the answering daemon's lease TTL, in seconds.
	LeaseTTL float64      `json:"lease_ttl"`
	Members  []MemberView `json:"members"`
}

// MemberView is one daemon process.
type MemberView struct {
	ID      string `json:"id"`
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
	// State: alive (heartbeat within its TTL), gone (stopped
	// heartbeating: killed, partitioned) or left (stopped cleanly).
	State       string     `json:"state"`
	StartedAt   string     `json:"started_at"`
	HeartbeatAt string     `json:"heartbeat_at"`
	Holds       []HoldView `json:"holds"`
}

// HoldView is a rotation whose lease a member holds.
type HoldView struct {
	Rotation string `json:"rotation"`
	Key      string `json:"key"`
	Phase    string `json:"phase"`
	Epoch    int64  `json:"epoch"`
}

// errNoMembership: the store keeps no cluster view.
var errNoMembership = errors.New("this store keeps no cluster view")

// Cluster reads the cluster view. visible filters the held rotations by
// key (nil: all).
func (d *Daemon) Cluster(ctx context.Context, visible func(key string) bool) (ClusterView, error) {
	ms, ok := d.Store.(rotator.Membership)
	if !ok {
		return ClusterView{}, errNoMembership
	}
	list, err := ms.Members(ctx)
	if err != nil {
		return ClusterView{}, err
	}
	v := ClusterView{LeaseTTL: d.Engine.LeaseTTL().Seconds(), Members: make([]MemberView, 0, len(list))}
	if d.member {
		v.Self = d.Engine.Owner()
	}
	for _, m := range list {
		mv := MemberView{ID: m.ID, Host: m.Host, PID: m.PID, Version: m.Version, State: rotator.MemberState(m),
			StartedAt: m.StartedAt.UTC().Format(time.RFC3339Nano), HeartbeatAt: m.HeartbeatAt.UTC().Format(time.RFC3339Nano), Holds: []HoldView{}}
		for _, h := range m.Holds {
			if visible == nil || visible(h.Key) {
				mv.Holds = append(mv.Holds, HoldView{Rotation: h.ID, Key: h.Key, Phase: string(h.Phase), Epoch: h.Epoch})
			}
		}
		v.Members = append(v.Members, mv)
	}
	return v, nil
}

// cluster serves GET /v1/cluster to any role that reads.
func (a *admin) cluster(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if !a.allow(w, p, auth.ActRead, "") {
		return
	}
	v, err := a.d.Cluster(r.Context(), func(key string) bool { return p.Can(auth.ActRead, a.key(key)) })
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
