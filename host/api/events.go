package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
)

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", limit)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return b, nil
}

// normalizeAll normalizes a request's events, the events of a large bulk
// request on every core.
func normalizeAll(values []*guest.Value, bulk bool, now time.Time) ([]*ingest.Normalized, error) {
	events := make([]*ingest.Normalized, len(values))
	errs := make([]error, len(values))
	norm := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			index := i
			if !bulk {
				index = -1
			}
			events[i], errs[i] = ingest.NormalizeValue(values[i], index, now)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(values)/64+1)
	if workers == 1 {
		norm(0, len(values))
		return events, errors.Join(errs...)
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*len(values)/workers, (w+1)*len(values)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			norm(lo, hi)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the first event in order that failed
		}
	}
	return events, nil
}

// syntaxError describes where a JSON body stops making sense.
func syntaxError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return errorf(http.StatusBadRequest, "malformed JSON at line %d, column %d (byte %d): %v", line, col, se.Offset, se)
	}
	var gse *guest.SyntaxError
	if errors.As(err, &gse) {
		if gse.Msg == "unexpected end of input" || strings.HasPrefix(gse.Msg, "unterminated") || strings.Contains(gse.Msg, "end of input") {
			return errorf(http.StatusBadRequest, "malformed JSON: the body is empty or ends early (%s)", gse.Msg)
		}
		line, col := position(body, int64(gse.Offset))
		return errorf(http.StatusBadRequest, "malformed JSON at line %d, column %d (byte %d): %s", line, col, gse.Offset, gse.Msg)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "malformed JSON: the body is empty or ends early")
	}
	return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
}

func position(b []byte, offset int64) (line, col int) {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:offset] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// postEvent is POST /api/v1/events: one event, answered 202 {"id"} once
// it is committed.
func (a *API) postEvent(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	return a.ingestRequest(w, r, false)
}

// postBulk is POST /api/v1/events/bulk: a JSON array of events, answered
// 202 {"ids": […]} once all are committed.
func (a *API) postBulk(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	return a.ingestRequest(w, r, true)
}

func (a *API) ingestRequest(w http.ResponseWriter, r *http.Request, bulk bool) error {
	err := a.ingest(w, r, bulk)
	if err != nil {
		a.mRejected(rejectReason(err)).Inc()
	}
	return err
}

func rejectReason(err error) string {
	var he *httpError
	switch {
	case errors.Is(err, ingest.ErrBusy):
		return "queue_full"
	case errors.Is(err, ingest.ErrClosed):
		return "shutting_down"
	case errors.As(err, &he):
		switch he.status {
		case http.StatusBadRequest:
			return "invalid"
		case http.StatusUnauthorized, http.StatusForbidden:
			return "unauthorized"
		case http.StatusRequestEntityTooLarge:
			return "too_large"
		case http.StatusTooManyRequests:
			return "rate_limited"
		}
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

func (a *API) ingest(w http.ResponseWriter, r *http.Request, bulk bool) error {
	ctx := r.Context()
	project, err := a.projectForKey(ctx, credential(r, false))
	if err != nil {
		return err
	}
	limit := a.cfg.Limits.MaxBody
	if bulk {
		limit = a.cfg.Limits.MaxBulkBody
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	// One parse of the whole body: a bulk request's events are normalized
	// from the parsed tree, not re-parsed one by one.
	root, err := guest.Parse(body)
	if err != nil {
		return syntaxError(body, err)
	}
	var values []*guest.Value
	if bulk {
		if root.Kind() != guest.Array {
			return errorf(http.StatusBadRequest, "bulk body must be a JSON array of events, got %s", kindOf(body))
		}
		values = root.Elems()
		if len(values) == 0 {
			return errorf(http.StatusBadRequest, "bulk body is an empty array: send at least one event")
		}
		if len(values) > a.cfg.Limits.MaxBulkEvents {
			return errorf(http.StatusRequestEntityTooLarge, "bulk body has %d events; the limit is %d per request", len(values), a.cfg.Limits.MaxBulkEvents)
		}
	} else {
		if root.Kind() != guest.Object {
			return errorf(http.StatusBadRequest, "body must be a JSON object (one event), got %s; send arrays to /api/v1/events/bulk", kindOf(body))
		}
		values = []*guest.Value{root}
	}
	events, err := normalizeAll(values, bulk, a.cfg.Now())
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	rate, burst := a.cfg.Limits.RateLimit, a.cfg.Limits.RateBurst
	if s := project.Settings; s.RateLimit > 0 {
		rate, burst = s.RateLimit, s.RateBurst
	}
	if ok, wait := a.rate.Allow(project.ID, len(events), rate, burst); !ok {
		return &httpError{status: http.StatusTooManyRequests, retryAfter: wait,
			msg: "rate limit of project " + project.Slug + " exceeded; retry after the Retry-After header's seconds"}
	}
	ids := make([]string, len(events))
	kept := events[:0:0]
	for i, ev := range events {
		ids[i] = ev.ID
		if sampledOut(ev.ID, project.Settings.SampleRate) {
			a.mSampled.Inc()
			continue
		}
		kept = append(kept, ev)
	}
	if err := a.cfg.Ingester.Submit(ctx, project.ID, kept); err != nil {
		return err
	}
	a.mAccepted.Add(uint64(len(events)))
	if bulk {
		writeJSON(w, http.StatusAccepted, map[string][]string{"ids": ids})
	} else {
		writeJSON(w, http.StatusAccepted, map[string]string{"id": ids[0]})
	}
	return nil
}

// sampledOut decides, from the event id alone, whether a project keeping a
// fraction rate of its events drops this one; a resend decides the same.
func sampledOut(id string, rate float64) bool {
	if rate <= 0 || rate >= 1 {
		return false
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()>>11)/(1<<53) >= rate
}
