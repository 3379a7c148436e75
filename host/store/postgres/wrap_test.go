package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mesher-dev/mesher/host/store"
)

func TestWrapUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"eof", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"deadline", &net.OpError{Op: "read", Err: context.DeadlineExceeded}, true},
		{"other", errors.New("boom"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := wrap("op", c.err)
			if got := errors.Is(err, store.ErrUnavailable); got != c.want {
				t.Errorf("wrap(%v): unavailable %v, want %v", c.err, got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("wrap(%v) = %v: lost the cause", c.err, err)
			}
		})
	}
	if wrap("op", nil) != nil {
		t.Errorf("wrap(nil): got an error, want nil")
	}
}
