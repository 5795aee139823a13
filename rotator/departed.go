package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Departure is what rekey keeps about a person reported as having left:
// when (the first time) and by which authenticated sender.
type Departure struct {
	Who string    `json:"-"`             // canonical identity
	At  time.Time `json:"at"`            // when the departure was received
	Via string    `json:"via,omitempty"` // the departure webhook's name
}

// Actor is the principal the departure acts as: departure:<webhook>.
func (d Departure) Actor() string { return departureActor(d.Via) }

// String is "<who> left on <date> (departure via <webhook>)".
func (d Departure) String() string {
	via := d.Via
	if via == "" {
		via = "a departure webhook"
	}
	return fmt.Sprintf("%s left on %s (departure via %s)", d.Who, d.At.UTC().Format("2006-01-02 15:04 MST"), via)
}

// ErrDeparted is wrapped by every refusal of a decision or request by a
// person reported as having left.
var ErrDeparted = errors.New("a person who left decides and requests nothing")

// DepartedError refuses what a person who left asks: their decisions no
// longer count, whatever the channel (API, Slack, break-glass).
type DepartedError struct {
	Departure Departure
	What      string // "decisions" or "requests"
}

func (e *DepartedError) Error() string {
	return fmt.Sprintf("%s; their %s no longer count", e.Departure, e.What)
}

// Unwrap makes errors.Is(err, ErrDeparted) hold.
func (e *DepartedError) Unwrap() error { return ErrDeparted }

// decodeDeparture reads a stateDeparted value: JSON, or the bare RFC 3339
// time that rekey wrote before it recorded the sender.
func decodeDeparture(who, v string) Departure {
	d := Departure{Who: who}
	if strings.HasPrefix(v, "{") {
		_ = json.Unmarshal([]byte(v), &d)
		return d
	}
	d.At, _ = time.Parse(time.RFC3339, v)
	return d
}

func encodeDeparture(d Departure) string {
	d.At = d.At.UTC().Truncate(time.Second)
	b, _ := json.Marshal(d)
	return string(b)
}

// Departed reports whether the person named who (any spelling of an
// identity: it is compared canonically) was reported as having left, and
// when. It reads the engine's state store each time, so a departure that
// another daemon sharing the store received counts here at once. Without
// a state store nobody is recorded as departed.
func (e *Engine) Departed(ctx context.Context, who string) (Departure, bool, error) {
	id := CanonicalIdentity(who)
	if e.state == nil || id == "" || ownActor(id) {
		return Departure{}, false, nil
	}
	v, ok, err := e.state.GetState(ctx, stateDeparted, id)
	if err != nil || !ok {
		return Departure{}, false, err
	}
	return decodeDeparture(id, v), true, nil
}

// ownActor reports whether id (canonical) is a name rekey acts under
// itself: the engine, the scheduler, the bootstrap token, or a
// "kind:name" channel or source (exposure:…, departure:…, break-glass:…).
// It is never a person, so it never counts as departed, even if a record
// naming it is in the store: a departure cannot switch off scheduled
// rotations, exposure emergencies or the bootstrap token. (It mirrors
// internal/reserved, which the departure webhook refuses with a 400.)
func ownActor(id string) bool {
	switch id {
	case "rekey", ActorScheduler, "admin":
		return true
	}
	return strings.Contains(id, ":")
}

// refuseDeparted refuses a decision or request (what) by a person who
// left. An actor rekey itself uses (scheduler, departure:…, exposure:…)
// is never recorded as departed (ownActor) and so passes.
func (e *Engine) refuseDeparted(ctx context.Context, actor, what string) error {
	d, gone, err := e.Departed(ctx, actor)
	if err != nil {
		return fmt.Errorf("check whether %s left: %w", actor, err)
	}
	if gone {
		return &DepartedError{Departure: d, What: what}
	}
	return nil
}

// UndoDeparture forgets that the person named who left — a departure HR
// sent by mistake — under every name they are known by
// (Options.Identities), audited as departure.undone by actor, an
// authenticated admin. It returns the names it cleared (ErrNotFound when
// none was recorded). It gives back nothing the departure took: revoked
// tokens stay revoked, and keys rotated stay rotated; a departure event
// still being retried goes on with its keys but does not record the person
// again (departurePlan.Marked).
func (e *Engine) UndoDeparture(ctx context.Context, who, actor string) ([]string, error) {
	del, ok := e.state.(StateDeleter)
	if !ok {
		return nil, fmt.Errorf("undo a departure: the state store cannot remove entries: %w", ErrBadState)
	}
	if err := e.refuseDeparted(ctx, actor, "requests"); err != nil {
		return nil, err
	}
	var cleared, was []string
	for _, name := range e.departedNames(DepartureReport{Email: who}) {
		d, gone, err := e.Departed(ctx, name)
		if err != nil {
			return nil, err
		}
		if gone {
			cleared, was = append(cleared, name), append(was, d.String())
		}
	}
	if len(cleared) == 0 {
		return nil, fmt.Errorf("%s is not recorded as having left: %w", CanonicalIdentity(who), ErrNotFound)
	}
	// Audited first: an undone departure gives a person their say back.
	if err := e.record(ctx, nil, []AuditEvent{{At: e.clock.Now(), Actor: actor, Action: "departure.undone",
		Detail: map[string]string{"person": strings.Join(cleared, "/"), "departure": strings.Join(was, "; ")}}}); err != nil {
		return nil, err
	}
	defer e.departed.forget()
	for _, name := range cleared {
		if err := del.DeleteState(ctx, stateDeparted, name); err != nil {
			return nil, err
		}
	}
	return cleared, nil
}
