package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rekeyhq/rekey/internal/redact"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
)

// maxAPIAnswer bounds what rekey reads of a GitHub API answer.
const maxAPIAnswer = 1 << 20

// alertDetails is what rekey keeps of the REST API's alert, besides the
// secret.
type alertDetails struct {
	Number     int64
	HTMLURL    string
	SecretType string
	State      string
}

// fetchAlert reads GET {api}/repos/{owner}/{repo}/secret-scanning/alerts/{n}
// and returns the alert with its secret, wrapped at once. Errors name the
// alert and classify the status; they never include the answer's body
// (which holds the secret).
func (h *Handler) fetchAlert(ctx context.Context, owner, repo string, number int64) (alertDetails, rotator.Secret, error) {
	path := "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/secret-scanning/alerts/" + strconv.FormatInt(number, 10)
	what := "github: GET " + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.apiBase+"/"+path, nil)
	if err != nil {
		return alertDetails{}, rotator.Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", "Bearer "+h.token.Reveal())
	body, status, err := do(h.client, req, maxAPIAnswer)
	if err != nil {
		return alertDetails{}, rotator.Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	if status != http.StatusOK {
		return alertDetails{}, rotator.Secret{}, rotator.HTTPStatusError(what, status, apiMessage(body))
	}
	d, secret, err := parseAlertAnswer(body)
	if err != nil {
		return alertDetails{}, rotator.Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	if d.Number != number {
		return alertDetails{}, rotator.Secret{}, fmt.Errorf("%s: answered alert %d", what, d.Number)
	}
	return d, secret, nil
}

// parseAlertAnswer decodes the REST API's alert. The secret leaves only as
// a rotator.Secret; errors never quote the document.
func parseAlertAnswer(b []byte) (alertDetails, rotator.Secret, error) {
	var a struct {
		Number     int64  `json:"number"`
		HTMLURL    string `json:"html_url"`
		SecretType string `json:"secret_type"`
		State      string `json:"state"`
		Secret     string `json:"secret"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return alertDetails{}, rotator.Secret{}, errors.New("the answer is not an alert object")
	}
	if a.Secret == "" {
		return alertDetails{}, rotator.Secret{}, errors.New("the alert carries no secret (does the token have secret_scanning_alerts read access?)")
	}
	secret := rotator.NewSecret(a.Secret)
	// Text escaped, not refused: a leak GitHub reports is acted on even if
	// its API answers odd text.
	d := alertDetails{
		Number:     a.Number,
		HTMLURL:    textcheck.Escape(redact.Token(a.HTMLURL, a.Secret)),
		SecretType: textcheck.Escape(redact.Token(a.SecretType, a.Secret)),
		State:      redact.Token(a.State, a.Secret),
	}
	return d, secret, nil
}

// apiMessage extracts GitHub's error message (never a secret: GitHub sends
// no alert on errors), shortened.
func apiMessage(b []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		return ""
	}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200]
	}
	return "(" + e.Message + ")"
}

// do sends req and reads at most limit bytes of the answer.
func do(c *http.Client, req *http.Request, limit int64) ([]byte, int, error) {
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by the caller
		}
		return nil, 0, rotator.WithReason(rotator.ReasonTransient, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("read answer: %w", err))
	}
	if int64(len(b)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return b, resp.StatusCode, nil
}
