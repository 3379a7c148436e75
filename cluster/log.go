package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLogger returns a *log.Logger for memberlist that forwards each
// line to logger at the level memberlist wrote in it ("[DEBUG]", "[INFO]",
// "[WARN]", "[ERR]").
func memberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(logWriter{logger}, "", 0)
}

type logWriter struct{ l *slog.Logger }

var logLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARN] ", slog.LevelWarn},
	{"[ERR] ", slog.LevelError},
	{"[ERROR] ", slog.LevelError},
}

func (w logWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	for _, l := range logLevels {
		if rest, ok := bytes.CutPrefix(msg, []byte(l.prefix)); ok {
			msg, level = rest, l.level
			break
		}
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, string(msg), "component", "memberlist")
	}
	return len(p), nil
}
