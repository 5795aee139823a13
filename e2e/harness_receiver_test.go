package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/rekeyhq/rekey/notifiers/webhook"
)

// The world's receiver of the daemon's signed webhook notifications.

// receive records signed webhook notifications and checks their signature.
// A body that ends before its announced length (read error, unexpected EOF)
// is a delivery cut short — the daemon was killed mid-request — not a
// forgery: it is counted apart, and the durable outbox must deliver it
// again (see waitRedelivered). Only a whole body with a wrong signature
// counts as bad.
func (w *world) receive(rw http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	body, err := io.ReadAll(r.Body)
	if err == nil && r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		err = fmt.Errorf("read %d bytes of %d: %w", len(body), r.ContentLength, io.ErrUnexpectedEOF)
	}
	if err != nil {
		w.mu.Lock()
		w.hookCut[id]++
		w.mu.Unlock()
		w.t.Logf("webhook delivery %s cut short (the sender went away mid-body): %v", id, err)
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	err = webhook.Verify(webhookSecret, id, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"), time.Now(), 0)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.hookBad++
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.hookBods = append(w.hookBods, body)
	w.hookGood[id] = true
	rw.WriteHeader(http.StatusNoContent)
}

func (w *world) notifications() ([][]byte, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.hookBods...), w.hookBad
}

// undelivered lists the ids of deliveries cut short that no later delivery
// brought whole.
func (w *world) undelivered() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for id := range w.hookCut {
		if !w.hookGood[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// waitRedelivered waits until every delivery a kill cut short has been
// delivered again, whole and signed, by a running daemon.
func (w *world) waitRedelivered(within time.Duration) {
	w.t.Helper()
	deadline := patient(within)
	for {
		ids := w.undelivered()
		if len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("webhook deliveries cut short by a kill were not delivered again within %s: %v", within, ids)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
