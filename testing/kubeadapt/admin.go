package kubeadapt

import (
	"crypto/subtle"
	"errors"
	"net/http"
)

// admin wraps an admin API handler with fault injection (first, as a
// gateway in front of the service would fail) and admin authentication.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, detail, failed := s.takeFault(); failed {
			if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			writeDetail(w, status, detail)
			return
		}
		tok, detail := bearerToken(r)
		if detail == "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.adminToken)) != 1 {
			detail = "invalid admin token"
		}
		if detail != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubeadapt-admin"`)
			writeDetail(w, http.StatusUnauthorized, detail)
			return
		}
		h(w, r)
	})
}

// createdKey is the answer to a successful POST: the only place the secret
// ever appears.
type createdKey struct {
	KeyInfo
	Secret string `json:"secret"`
}

type keyList struct {
	Data []KeyInfo `json:"data"`
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.listKeys(w, r)
	case http.MethodPost:
		s.idempotent(w, r, s.createKey)
	default:
		methodNotAllowed(w, "GET, POST")
	}
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req KeyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.onCreate != nil {
		s.onCreate(req.Name)
	}
	if status, failed := s.takeCreateFault(); failed {
		// Behind the idempotency layer: stored and replayed for the key.
		writeDetail(w, status, "injected failure while creating the api key")
		return
	}
	info, secret, err := s.CreateKey(req)
	if err != nil {
		var inv *invalidError
		if errors.As(err, &inv) {
			writeDetail(w, http.StatusUnprocessableEntity, inv.msg)
			return
		}
		writeDetail(w, http.StatusInternalServerError, "could not create api key")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/admin/v1/api-keys/"+info.ID)
	writeJSON(w, http.StatusCreated, createdKey{KeyInfo: info, Secret: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, status := q.Get("name"), q.Get("status")
	if status != "" && status != StatusActive && status != StatusRevoked {
		writeDetail(w, http.StatusUnprocessableEntity, `status must be "active" or "revoked"`)
		return
	}
	out := keyList{Data: []KeyInfo{}}
	for _, k := range s.Keys() {
		if (q.Has("name") && k.Name != name) || (status != "" && k.Status != status) {
			continue
		}
		out.Data = append(out.Data, k)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleKey(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		k, ok := s.Key(r.PathValue("id"))
		if !ok {
			writeDetail(w, http.StatusNotFound, "api key not found")
			return
		}
		writeJSON(w, http.StatusOK, k)
	case http.MethodDelete:
		if s.revoke(w, r) {
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		methodNotAllowed(w, "GET, DELETE")
	}
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	if s.revoke(w, r) {
		k, _ := s.Key(r.PathValue("id"))
		writeJSON(w, http.StatusOK, k)
	}
}

// revoke revokes the key named in the path; on failure it writes the error
// answer and returns false.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) bool {
	_, err := s.Revoke(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeDetail(w, http.StatusNotFound, "api key not found")
	case errors.Is(err, ErrAlreadyRevoked):
		writeDetail(w, http.StatusConflict, "already revoked")
	case err != nil:
		writeDetail(w, http.StatusInternalServerError, "could not revoke api key")
	default:
		return true
	}
	return false
}

// FailNext makes the next n admin API requests (authenticated or not)
// answer status with {"detail": "injected failure"}, plus Retry-After: 1 for
// 429 and 503. It replaces any pending failures; n <= 0 clears them. It
// panics if status is not a 4xx or 5xx code. The data API is unaffected.
func (s *Server) FailNext(n int, status int) {
	if status < 400 || status > 599 {
		panic("kubeadapt: FailNext status must be 4xx or 5xx")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRemaining, s.failStatus = max(n, 0), status
}

// FailNextCreates makes the next n create calls that reach the service
// (past authentication and JSON decoding) answer status without creating
// anything. Unlike FailNext, the failure comes from behind the
// Idempotency-Key layer: a create sent with a key stores that answer and
// replays it for the key's whole window, as a server that stores errors
// does. n <= 0 clears them. It panics if status is not a 4xx or 5xx code.
func (s *Server) FailNextCreates(n int, status int) {
	if status < 400 || status > 599 {
		panic("kubeadapt: FailNextCreates status must be 4xx or 5xx")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createFails, s.createFailStatus = max(n, 0), status
}

func (s *Server) takeCreateFault() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.createFails > 0 {
		s.createFails--
		return s.createFailStatus, true
	}
	return 0, false
}

// SetAdminDown makes every admin API request answer 503 with Retry-After: 1
// while down is true. It takes precedence over FailNext, whose pending
// failures it does not consume. The data API is unaffected.
func (s *Server) SetAdminDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adminDown = down
}

func (s *Server) takeFault() (status int, detail string, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.adminDown:
		return http.StatusServiceUnavailable, "admin api unavailable", true
	case s.failRemaining > 0:
		s.failRemaining--
		return s.failStatus, "injected failure", true
	}
	return 0, "", false
}
