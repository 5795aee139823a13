package consumer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Attest configures a consumer's reports to rekey of the key it holds: on
// every read (so at least every Reload), a POST of
// {"key", "consumer", "fingerprint"} to URL, signed the Standard Webhooks
// way — written here from the public specification, not with rekey's code,
// as any consumer would.
type Attest struct {
	// URL of the attestation endpoint, e.g.
	// http://127.0.0.1:8080/v1/consumers/attest.
	URL string
	// Secret is the shared signing secret: "whsec_<base64>" or raw bytes.
	Secret string
	// Key is rekey's name of the key; Name is this consumer's.
	Key, Name string
}

// attest reports the key with fingerprint fp and records the outcome.
func (c *Consumer) attest(ctx context.Context, fp string) {
	a := c.opts.Attest
	body, _ := json.Marshal(map[string]string{"key": a.Key, "consumer": a.Name, "fingerprint": fp})
	status, err := a.send(ctx, c.opts.Client, body, c.opts.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Attestations++
	if err != nil || status != http.StatusAccepted {
		c.rep.AttestErrors++
		if err != nil {
			c.rep.LastAttestError = redactedError(err)
		} else {
			c.rep.LastAttestError = "HTTP " + strconv.Itoa(status)
		}
		return
	}
	c.rep.LastAttested, c.rep.LastAttestedAt = fp, c.opts.Now()
}

func (a *Attest) send(ctx context.Context, client *http.Client, body []byte, now time.Time) (int, error) {
	key := []byte(a.Secret)
	if rest, ok := strings.CutPrefix(a.Secret, "whsec_"); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return 0, fmt.Errorf("attest: secret is not whsec_<base64>")
		}
		key = b
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	id := "msg_" + hex.EncodeToString(idb[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}
