package kubeadapt

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// AdminToken is the bearer token of the admin API. Empty means a random
	// token; read it back with Server.AdminToken.
	AdminToken string
	// Clock returns the current time (created_at, last_used_at, revoked_at).
	// Nil means time.Now.
	Clock func() time.Time
	// Clusters served by the data API. Nil means DemoClusters().
	Clusters []Cluster
	// Logger receives one line per request (method, path, status; never a
	// header or query). Nil discards.
	Logger *slog.Logger
	// IdempotencyTTL is how long the create call remembers an
	// Idempotency-Key (its answer is replayed meanwhile). Zero means
	// DefaultIdempotencyTTL.
	IdempotencyTTL time.Duration
	// OnCreate, if set, is called by the create call with the key's name
	// before it creates the key, outside any lock: a test can hold a
	// request in flight with it.
	OnCreate func(name string)
}

// Server is the fake Kubeadapt API. It is an http.Handler, safe for
// concurrent use: mount it on httptest.NewServer or call Start.
type Server struct {
	adminToken string
	now        func() time.Time
	clusters   []Cluster // immutable after New
	log        *slog.Logger
	mux        *http.ServeMux

	mu            sync.Mutex
	keys          []*apiKey // creation order
	byID          map[string]*apiKey
	byHash        map[[sha256.Size]byte]*apiKey
	requests      map[requestLabels]int
	failRemaining int
	failStatus    int
	// createFails: create calls to fail behind the idempotency layer.
	createFails      int
	createFailStatus int
	adminDown        bool
	idem             map[string]*idemEntry // by Idempotency-Key
	idemTTL          time.Duration
	idemStats        IdempotencyStats
	onCreate         func(name string)

	lisMu sync.Mutex
	srv   *http.Server
	url   string
}

// New returns a Server with no keys.
func New(opts Options) *Server {
	s := &Server{
		adminToken: opts.AdminToken,
		now:        opts.Clock,
		clusters:   cloneClusters(opts.Clusters),
		log:        opts.Logger,
		byID:       map[string]*apiKey{},
		byHash:     map[[sha256.Size]byte]*apiKey{},
		requests:   map[requestLabels]int{},
		idem:       map[string]*idemEntry{},
		idemTTL:    opts.IdempotencyTTL,
		onCreate:   opts.OnCreate,
	}
	if s.idemTTL <= 0 {
		s.idemTTL = DefaultIdempotencyTTL
	}
	if s.adminToken == "" {
		s.adminToken = randomBase62(32)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Clusters == nil {
		s.clusters = DemoClusters()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux = s.routes()
	return s
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// Methods are checked in the handlers so that every answer, 405
	// included, carries a JSON body.
	mux.Handle("/admin/", s.admin(notFound))
	mux.Handle("/admin/v1/api-keys", s.admin(s.handleKeys))
	mux.Handle("/admin/v1/api-keys/{id}", s.admin(s.handleKey))
	mux.Handle("/admin/v1/api-keys/{id}/revoke", s.admin(s.handleRevoke))

	mux.Handle("/v1/", s.data(dataNotFound))
	mux.Handle("/v1/clusters", s.data(s.listClusters))
	mux.Handle("/v1/clusters/{id}", s.data(s.getCluster))
	mux.Handle("/v1/costs", s.data(s.listCosts))

	mux.HandleFunc("/metrics", s.handleMetrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", notFound)
	return mux
}

// AdminToken returns the bearer token of the admin API.
func (s *Server) AdminToken() string { return s.adminToken }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r)
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.code())
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close. URL returns the base URL once Start returned.
func (s *Server) Start(addr string) error {
	s.lisMu.Lock()
	defer s.lisMu.Unlock()
	if s.srv != nil {
		return errors.New("kubeadapt: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kubeadapt: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	s.url = "http://" + ln.Addr().String()
	go func() { _ = srv.Serve(ln) }() // http.ErrServerClosed after Close
	return nil
}

// URL returns the base URL ("http://host:port") of a started server, or ""
// before Start.
func (s *Server) URL() string {
	s.lisMu.Lock()
	defer s.lisMu.Unlock()
	return s.url
}

// Close stops a server started with Start. It is a no-op otherwise.
func (s *Server) Close() error {
	s.lisMu.Lock()
	defer s.lisMu.Unlock()
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

type detailBody struct {
	Detail string `json:"detail"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if body != nil {
		_ = json.NewEncoder(w).Encode(body)
	}
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, detailBody{Detail: detail})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeDetail(w, http.StatusNotFound, "not found")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeDetail(w, http.StatusMethodNotAllowed, "method not allowed")
}

// decodeJSON reads one JSON object of at most 1 MiB, rejecting unknown
// fields and trailing data so that client typos surface in tests.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("request body is required")
		}
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
