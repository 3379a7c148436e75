package batch

import (
	"fmt"
	"sort"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// HourCount is the number of new events of one issue (project and
// fingerprint) and level received in one UTC hour.
type HourCount struct {
	ProjectID   string // canonical
	Fingerprint string
	Hour        time.Time
	Level       string
	N           int64
}

// TagCount is the number of new events of one project received on one
// UTC day with a tag value.
type TagCount struct {
	ProjectID string // canonical
	Key       string
	Day       time.Time
	Value     string
	N         int64
}

// Counts returns what the dashboards count of the events whose index
// isNew reports: per issue, hour and level, sorted by project, fingerprint
// (byte order), hour and level; and per tag value and day, with keys and
// values cut to store.MaxTagLength characters, sorted by project, key,
// day and value. Text is cleaned as CleanText does.
func Counts(events []*store.Event, isNew func(i int) bool) ([]HourCount, []TagCount) {
	type hourKey struct {
		project, fingerprint string
		hour                 int64
		level                string
	}
	type tagKey struct {
		project, key string
		day          int64
		value        string
	}
	hours := map[hourKey]int64{}
	tags := map[tagKey]int64{}
	for i, e := range events {
		if !isNew(i) {
			continue
		}
		project := canonical(e.ProjectID)
		us := e.ReceivedAt.UnixMicro()
		hours[hourKey{project, CleanText(e.Fingerprint), floorDiv(us, hourMicros) * hourMicros, CleanText(e.Level)}]++
		day := floorDiv(us, dayMicros) * dayMicros
		for k, v := range e.Tags {
			tags[tagKey{project, TagText(k), day, TagText(v)}]++
		}
	}
	hc := make([]HourCount, 0, len(hours))
	for k, n := range hours {
		hc = append(hc, HourCount{k.project, k.fingerprint, time.UnixMicro(k.hour).UTC(), k.level, n})
	}
	sort.Slice(hc, func(i, j int) bool {
		a, b := &hc[i], &hc[j]
		switch {
		case a.ProjectID != b.ProjectID:
			return a.ProjectID < b.ProjectID
		case a.Fingerprint != b.Fingerprint:
			return a.Fingerprint < b.Fingerprint
		case !a.Hour.Equal(b.Hour):
			return a.Hour.Before(b.Hour)
		}
		return a.Level < b.Level
	})
	tc := make([]TagCount, 0, len(tags))
	for k, n := range tags {
		tc = append(tc, TagCount{k.project, k.key, time.UnixMicro(k.day).UTC(), k.value, n})
	}
	sort.Slice(tc, func(i, j int) bool {
		a, b := &tc[i], &tc[j]
		switch {
		case a.ProjectID != b.ProjectID:
			return a.ProjectID < b.ProjectID
		case a.Key != b.Key:
			return a.Key < b.Key
		case !a.Day.Equal(b.Day):
			return a.Day.Before(b.Day)
		}
		return a.Value < b.Value
	})
	return hc, tc
}

// TagText returns a tag key or value as the tag counts keep it: cleaned,
// and cut to store.MaxTagLength characters.
func TagText(s string) string {
	s = CleanText(s)
	if len(s) <= store.MaxTagLength {
		return s
	}
	n := 0
	for i := range s {
		if n == store.MaxTagLength {
			return s[:i]
		}
		n++
	}
	return s
}

const (
	hourMicros = int64(time.Hour / time.Microsecond)
	dayMicros  = 24 * hourMicros
)

// floorDiv divides rounding towards minus infinity, so that times before
// 1970 fall in the bucket that starts before them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// CheckRange returns an error unless from is before to and both are
// multiples of unit (an hour or a day) since the Unix epoch, as the
// dashboards' counts need.
func CheckRange(from, to time.Time, unit time.Duration) error {
	if !from.Before(to) {
		return fmt.Errorf("range [%v, %v) is empty", from, to)
	}
	u := unit.Microseconds()
	if from.UnixMicro()%u != 0 || to.UnixMicro()%u != 0 || from.Nanosecond()%1000 != 0 || to.Nanosecond()%1000 != 0 {
		return fmt.Errorf("range [%v, %v) does not start and end on a multiple of %v", from, to, unit)
	}
	return nil
}
