// Package kubeadapt is a local, faithful stand-in for a Kubeadapt-style SaaS
// API, for tests and demos of rekey's issuers, drain gates and end-to-end
// rotations. It serves an admin API that mints, lists and revokes API keys
// (ka_live_ + 32 base62 characters, shown once, stored only as SHA-256
// beside the answer an Idempotency-Key replays until it expires; 422 for
// the key with another payload, 409 while its first request runs), a
// small data API that honours the keys' scopes and cluster allow-lists
// exactly as the reference documents (401 missing or invalid key, 403 valid
// key lacking scope or cluster, revocation effective on the next request),
// Prometheus metrics that attribute every data request to a key and a status
// code, and fault injection for the admin API. See README.md for the routes.
package kubeadapt
