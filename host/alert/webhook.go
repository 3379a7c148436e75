package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
)

// Webhook request headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// request body, keyed with the rule's webhook secret.
	SignatureHeader = "X-Mesher-Signature"
	// EventHeader names what the body is about: "alert.fired".
	EventHeader = "X-Mesher-Event"
	// DeliveryHeader is the alert's id: the same on every attempt, so a
	// receiver can drop a repeat.
	DeliveryHeader = "X-Mesher-Delivery"
)

// Sign returns the SignatureHeader value of body for secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header, a SignatureHeader value, signs body with
// secret. It compares in constant time.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// WebhookBody is what a webhook receives.
type WebhookBody struct {
	Event   string        `json:"event"` // "alert.fired"
	Alert   *store.Alert  `json:"alert"`
	Rule    webhookRule   `json:"rule"`
	Project webhookTarget `json:"project"`
}

type webhookRule struct {
	ID        string               `json:"id"`
	Name      string               `json:"name"`
	Condition store.AlertCondition `json:"condition"`
}

type webhookTarget struct {
	ID   string `json:"id"`
	Slug string `json:"slug,omitempty"`
	Name string `json:"name,omitempty"`
}

// deliver sends a to the rule's webhook in the background.
func (e *Engine) deliver(r *store.AlertRule, a *store.Alert) {
	e.deliveries.Add(1)
	go func() {
		defer e.deliveries.Done()
		select {
		case e.sem <- struct{}{}:
			defer func() { <-e.sem }()
		case <-e.ctx.Done():
			return
		}
		e.send(e.ctx, r, a)
	}()
}

// send POSTs a to the rule's webhook until an attempt succeeds, the
// receiver refuses it for good (a 4xx other than 408 and 429), the
// attempts run out or ctx ends, waiting WebhookBackoff after the first
// failure and twice as long after each next one (or what a 429 or 503
// asks for in Retry-After, up to a minute). It records every attempt.
func (e *Engine) send(ctx context.Context, r *store.AlertRule, a *store.Alert) {
	body := WebhookBody{Event: "alert.fired", Alert: a, Project: webhookTarget{ID: a.ProjectID},
		Rule: webhookRule{ID: r.ID, Name: r.Name, Condition: r.Condition}}
	if p, err := e.cfg.Store.Project(ctx, a.ProjectID); err == nil {
		body.Project.Slug, body.Project.Name = p.Slug, p.Name
	}
	b, err := json.Marshal(body)
	if err != nil {
		e.log.Error("alert: encode webhook", "alert", a.ID, "err", err)
		return
	}
	sig := Sign(r.WebhookSecret, b)
	wait := e.cfg.WebhookBackoff
	for attempt := 1; attempt <= e.cfg.WebhookAttempts; attempt++ {
		d := &store.WebhookDelivery{ID: ingest.NewUUID(), RuleID: r.ID, AlertID: a.ID, URL: r.Actions.WebhookURL,
			Attempt: attempt, At: e.cfg.Now()}
		start := time.Now()
		retryAfter, final := e.attempt(ctx, d, b, sig)
		d.DurationMS = time.Since(start).Milliseconds()
		// Record even when ctx has ended: the log should say why the
		// delivery stopped.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := e.cfg.Store.AddWebhookDelivery(rctx, d); err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Error("alert: record webhook delivery", "alert", a.ID, "err", err)
		}
		cancel()
		if d.Success || final || ctx.Err() != nil || attempt == e.cfg.WebhookAttempts {
			if !d.Success {
				e.log.Warn("alert: webhook not delivered", "alert", a.ID, "rule", r.ID, "attempts", attempt, "error", d.Error)
			}
			return
		}
		pause := min(max(wait, retryAfter), maxBackoff)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// attempt makes one delivery attempt and fills d with its outcome. It
// returns how long the receiver asked to wait, and whether retrying is
// pointless.
func (e *Engine) attempt(ctx context.Context, d *store.WebhookDelivery, body []byte, sig string) (retryAfter time.Duration, final bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return 0, true
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mesher-Webhook/1")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(EventHeader, "alert.fired")
	req.Header.Set(DeliveryHeader, d.AlertID)
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		d.Error = err.Error()
		if ctx.Err() != nil {
			d.Error = "canceled: the node is shutting down"
		}
		return 0, false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	d.StatusCode = resp.StatusCode
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.Success = true
		return 0, true
	}
	d.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, false
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return 0, false
	}
	return 0, true // the receiver refuses this request; resending it will not help
}
