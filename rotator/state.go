package rotator

import "context"

// StateStore is a small durable key-value space for adapters that must
// remember something across restarts (a Slack message's timestamp for a
// rotation, a cached key list). Values must never hold secret material.
// Namespaces keep adapters apart; use the adapter's configured name.
type StateStore interface {
	GetState(ctx context.Context, namespace, key string) (value string, ok bool, err error)
	PutState(ctx context.Context, namespace, key, value string) error
}

// StateLister is an optional StateStore capability: every entry of a
// namespace in one call (for plans over many keys).
type StateLister interface {
	ListState(ctx context.Context, namespace string) (map[string]string, error)
}

// StateDeleter is an optional StateStore capability: remove an entry
// (a departure undone).
type StateDeleter interface {
	DeleteState(ctx context.Context, namespace, key string) error
}

// RotationReader is the read side of the store that inbound adapters (Slack
// interactions, webhooks) need to check a request against current state.
type RotationReader interface {
	GetRotation(ctx context.Context, id string) (*Rotation, error)
}

// Decider records human decisions; *Engine implements it.
type Decider interface {
	Decide(ctx context.Context, req ApproveRequest) (*Rotation, error)
}

var _ Decider = (*Engine)(nil)
