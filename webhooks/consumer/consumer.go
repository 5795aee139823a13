// Package consumer is the consumer attestation webhook,
// POST /v1/consumers/attest: a consumer of a key (an application on
// reload, a sidecar, a Vault Agent or External Secrets hook, a deploy
// script) reports which generation of the key it now holds, signed the
// Standard Webhooks way with a secret the consumers share. rekey remembers
// the consumers seen per key; the consumers traffic source passes the
// drain gate's "is the old key still used?" only when every consumer heard
// from within its horizon reports the new generation.
//
// Body (generation or fingerprint; never the key itself):
//
//	{"key": "payments-api", "consumer": "billing-7f9c", "generation": "payments-api-v8"}
//	{"key": "payments-api", "consumer": "billing-7f9c", "fingerprint": "<sha256 hex of the key>"}
//
// generation is the credential's name (<key>-v<N>) or its number. A
// fingerprint names the generation whose SHA-256 it is (what a hook that
// sees only the rendered secret can compute).
//
// Answers: 202 {"accepted":true,"generation":N,"current":M}; 400 malformed
// body; 401 bad signature or timestamp; 404 unknown key; 405; 409 an exact
// replay, or a new consumer past max_consumers_per_key; 413 body over
// 1 MiB; 415 not JSON; 422 a generation or fingerprint the key never had;
// 429 past rate_per_minute; 503 could not be recorded (retry). Nothing is
// recorded unless the answer is 202.
package consumer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Route is where the app mounts the handler (the public listener).
const Route = "POST /v1/consumers/attest"

// ReplayNamespace is the ReplayGuard namespace of signed attempts.
const ReplayNamespace = "consumer"

// consumerName: what a consumer may call itself (a host, a pod, a service).
var consumerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$`)

// Credentials lists a key's credentials (rotator.Store does).
type Credentials interface {
	Credentials(ctx context.Context, key string) ([]*rotator.Credential, error)
}

// Handler serves the consumer attestation webhook.
type Handler struct {
	auth      inbound.Signed
	signers   []signer
	via       string
	known     func(key string) bool
	creds     Credentials
	store     rotator.ConsumerStore
	perMinute int
	retention time.Duration
	maxPerKey int
	log       *slog.Logger
	now       func() time.Time
}

// New resolves the signing secret (so a missing or weak one fails at start)
// and builds the handler; via names it in the records (the webhook's name),
// known reports whether rekey manages a key.
func New(cfg Config, via string, known func(string) bool, creds Credentials, store rotator.ConsumerStore, guard rotator.ReplayGuard, logger *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer webhook: %w", err)
	}
	if known == nil || creds == nil || store == nil || guard == nil {
		return nil, errors.New("consumer webhook: keys, credentials, consumer store and replay guard are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("webhook", ReplayNamespace)
	var signers []signer
	if cfg.hasShared() {
		key, err := inbound.Key(cfg.Secret(), "secret")
		if err != nil {
			return nil, fmt.Errorf("consumer webhook: %w", err)
		}
		signers = append(signers, signer{key: key, keys: cfg.Keys, via: via, namespace: ReplayNamespace})
	}
	for i, s := range cfg.Senders {
		key, err := inbound.Key(secretref.Ref{Env: s.SecretEnv, File: s.SecretFile}, fmt.Sprintf("senders[%d].secret", i))
		if err != nil {
			return nil, fmt.Errorf("consumer webhook: %w", err)
		}
		signers = append(signers, signer{key: key, keys: s.Keys, via: via + "/" + s.Name, namespace: ReplayNamespace + "/" + s.Name})
	}
	for i := range signers {
		for j := range i {
			if signers[i].key.Equal(signers[j].key) {
				// The signature would always name the first: the second
				// could never attest for its keys.
				return nil, fmt.Errorf("consumer webhook: %s and %s use the same secret; each sender needs its own", signerField(cfg, i), signerField(cfg, j))
			}
		}
		signers[i].limit = rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.RatePerMinute)), cfg.RatePerMinute)
	}
	return &Handler{
		auth:    inbound.Signed{Tolerance: cfg.Tolerance, Guard: guard, Namespace: ReplayNamespace, Log: logger},
		signers: signers,
		via:     via, known: known, creds: creds, store: store,
		perMinute: cfg.RatePerMinute, retention: cfg.Retention, maxPerKey: cfg.MaxConsumersPerKey,
		log: logger, now: time.Now,
	}, nil
}

// signer is a secret and the keys it may attest for; via names it in the
// records ("<webhook>" or "<webhook>/<sender>").
type signer struct {
	key  stdwebhooks.Key
	keys string
	via  string
	// Each signer has its own budget and its own replay namespace: one
	// team's consumers cannot spend another's attestations, and a message
	// id two teams happen to share is no replay.
	limit     *rate.Limiter
	namespace string
}

type request struct {
	Key         string          `json:"key"`
	Consumer    string          `json:"consumer"`
	Generation  json.RawMessage `json:"generation"`
	Fingerprint string          `json:"fingerprint"`
}

type response struct {
	Accepted   bool `json:"accepted"`
	Generation int  `json:"generation"`
	Current    int  `json:"current"`
}

// ServeHTTP authenticates, rate-limits, parses, resolves the generation,
// claims the signed attempt, records the consumer, then answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	keys := make([]stdwebhooks.Key, len(h.signers))
	for i, s := range h.signers {
		keys[i] = s.key
	}
	msg, body, who, ok := h.auth.AuthenticateAny(w, r, now, keys)
	if !ok {
		return
	}
	from := h.signers[who]
	res := from.limit.ReserveN(now, 1)
	if !res.OK() || res.DelayFrom(now) > 0 {
		delay := res.DelayFrom(now)
		res.CancelAt(now)
		w.Header().Set("Retry-After", strconv.Itoa(int(delay.Seconds())+1))
		httpx.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("more than %d attestations a minute; retry later", h.perMinute))
		return
	}
	var req request
	if err := httpx.DecodeStrict(body, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := req.check(); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A key outside the signer's scope is answered as an unknown one: a
	// team's consumers learn nothing of other teams' keys.
	if !h.known(req.Key) || !allows(from.keys, req.Key) {
		httpx.WriteError(w, http.StatusNotFound, "unknown key")
		return
	}
	ctx, cancel := inbound.Detach(r)
	defer cancel()
	creds, err := h.creds.Credentials(ctx, req.Key)
	if err != nil {
		h.log.ErrorContext(ctx, "list credentials", "key", req.Key, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the attestation could not be checked; retry later")
		return
	}
	gen, current, err := resolve(req, creds)
	if err != nil {
		httpx.WriteError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	claim := h.auth
	claim.Namespace = from.namespace
	if !claim.Claim(ctx, w, msg, now) {
		// A replayed attempt (someone holding one captured request, not
		// the secret) must not spend the budget real consumers share.
		res.CancelAt(now)
		return
	}
	c := rotator.ConsumerSeen{Key: req.Key, Name: req.Consumer, Generation: gen, LastSeen: now, Via: from.via}
	if err := h.store.RecordConsumer(ctx, c, now.Add(-h.retention), h.maxPerKey); err != nil {
		if errors.Is(err, rotator.ErrTooManyConsumers) {
			httpx.WriteError(w, http.StatusConflict, fmt.Sprintf("key %s already has %d consumers remembered; a new one is refused until others age out", req.Key, h.maxPerKey))
			return
		}
		h.log.ErrorContext(ctx, "record consumer", "key", req.Key, "consumer", req.Consumer, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the attestation could not be recorded; retry later")
		return
	}
	h.log.InfoContext(ctx, "consumer attested", "webhook_id", msg.ID, "key", req.Key, "consumer", req.Consumer, "generation", gen, "current", current)
	httpx.WriteJSON(w, http.StatusAccepted, response{Accepted: true, Generation: gen, Current: current})
}

func (r request) check() error {
	var errs []error
	if r.Key == "" || len(r.Key) > 200 {
		errs = append(errs, errors.New("key: required, at most 200 bytes"))
	}
	if !consumerName.MatchString(r.Consumer) {
		errs = append(errs, errors.New("consumer: 1 to 128 letters, digits, '.', '_', ':', '/', '@' or '-'"))
	}
	hasGen := len(r.Generation) > 0 && string(r.Generation) != "null"
	switch {
	case hasGen && r.Fingerprint != "":
		errs = append(errs, errors.New("set only one of generation and fingerprint"))
	case !hasGen && r.Fingerprint == "":
		errs = append(errs, errors.New("generation or fingerprint: one is required"))
	case r.Fingerprint != "":
		if b, err := hex.DecodeString(r.Fingerprint); err != nil || len(b) != 32 {
			errs = append(errs, errors.New("fingerprint: must be 64 hex characters (SHA-256 of the key)"))
		}
	}
	return errors.Join(errs...)
}

// resolve finds the generation the request names among the key's
// credentials, and the current generation.
func resolve(req request, creds []*rotator.Credential) (gen, current int, err error) {
	byGen := map[int]*rotator.Credential{}
	for _, c := range creds {
		byGen[c.Generation] = c
		if c.State == rotator.CredCurrent {
			current = c.Generation
		}
	}
	if req.Fingerprint != "" {
		fp := strings.ToLower(req.Fingerprint)
		for _, c := range creds {
			if c.Fingerprint == fp {
				return c.Generation, current, nil
			}
		}
		return 0, current, errors.New("fingerprint: no generation of the key has it")
	}
	gen, err = parseGeneration(req.Key, req.Generation)
	if err != nil {
		return 0, current, err
	}
	if byGen[gen] == nil {
		return 0, current, fmt.Errorf("generation: the key has no generation %d", gen)
	}
	return gen, current, nil
}

// parseGeneration accepts "<key>-v<N>", "<N>" or N.
func parseGeneration(key string, raw json.RawMessage) (int, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, errors.New("generation: a name or a number")
	}
	var s string
	switch t := v.(type) {
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		s = strings.TrimPrefix(t, key+"-v")
	default:
		return 0, errors.New("generation: a name or a number")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("generation: want %s-v<N> or N", key)
	}
	return n, nil
}

var _ http.Handler = (*Handler)(nil)

// signerField names signer i's secret in the configuration.
func signerField(cfg Config, i int) string {
	if cfg.hasShared() {
		if i == 0 {
			return "secret"
		}
		i--
	}
	return fmt.Sprintf("senders[%d].secret", i)
}
