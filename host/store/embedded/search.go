package embedded

import (
	"bytes"
	"encoding/json"
	"strings"
)

// exceptionText returns the values of an event body's exceptions, given as
// {"exception": {"values": [{"value": …}, …]}} or {"exception": [{"value":
// …}, …]}, joined by spaces, for the full-text index. Only the top-level
// "exception" counts, as in PostgreSQL's search column.
func exceptionText(body []byte) string {
	raw := topLevel(body, "exception")
	if raw == nil {
		return ""
	}
	type value struct {
		Value any `json:"value"`
	}
	var values []value
	var wrapped struct {
		Values []value `json:"values"`
	}
	if json.Unmarshal(raw, &wrapped) == nil {
		values = wrapped.Values
	} else if json.Unmarshal(raw, &values) != nil {
		return ""
	}
	var sb strings.Builder
	for _, v := range values {
		s, ok := v.Value.(string)
		if !ok {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(s)
	}
	return sb.String()
}

// topLevel returns the value of member key of the JSON object doc, or nil
// if doc is not an object or has no such member. It skips the other
// members without decoding them: decoding a whole 1 KB body with
// encoding/json costs more than the rest of storing it. A malformed doc
// yields nil or a value json.Unmarshal refuses.
func topLevel(doc []byte, key string) []byte {
	if !bytes.Contains(doc, []byte(`"`+key+`"`)) {
		return nil
	}
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != '"' {
			return nil
		}
		end := skipString(doc, i)
		if end < 0 {
			return nil
		}
		name := doc[i+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return nil
		}
		i = skipSpace(doc, i+1)
		end = skipValue(doc, i)
		if end < 0 {
			return nil
		}
		if string(name) == key {
			return doc[i:end]
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ',' {
			return nil
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i],
// or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just past the value that starts at b[i], or
// -1. It checks nesting, not the tokens inside.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[j])) {
			j++
		}
		return j
	}
}
