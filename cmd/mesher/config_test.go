package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MESHER_HTTP_ADDR": "nonsense"}, "MESHER_HTTP_ADDR (-http-addr)"},
		{map[string]string{"MESHER_HTTP_ADDR": "127.0.0.1:99999"}, "MESHER_HTTP_ADDR (-http-addr)"},
		{map[string]string{"MESHER_DATABASE_URL": "mysql://x"}, "MESHER_DATABASE_URL (-database-url)"},
		{map[string]string{"MESHER_PROCESSOR_TIMEOUT": "soon"}, "MESHER_PROCESSOR_TIMEOUT (-processor-timeout)"},
		{map[string]string{"MESHER_PROCESSOR_MEMORY_MB": "1"}, "MESHER_PROCESSOR_MEMORY_MB"},
		{map[string]string{"MESHER_MAX_BULK_EVENTS": "-3"}, "MESHER_MAX_BULK_EVENTS"},
		{map[string]string{"MESHER_RATE_LIMIT": "fast"}, "MESHER_RATE_LIMIT"},
		{map[string]string{"MESHER_LOG_LEVEL": "loud"}, "MESHER_LOG_LEVEL"},
		{map[string]string{"MESHER_ADMIN_TOKEN": "short"}, "MESHER_ADMIN_TOKEN"},
		{map[string]string{"MESHER_PEERS": "a:1,b"}, "MESHER_PEERS"},
		{map[string]string{"MESHER_NODE_NAME": "n1"}, "MESHER_COOKIE"},
		{map[string]string{"MESHER_NODE_NAME": "n1", "MESHER_COOKIE": "0123456789abcdef"}, "cluster mode (MESHER_NODE_NAME and MESHER_COOKIE) needs a PostgreSQL"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve"}, func(k string) string { return tt.env[k] }, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"MESHER_HTTP_ADDR": "127.0.0.1:1", "MESHER_MAX_BULK_EVENTS": "9"}
	c, err := parseServeConfig([]string{"-http-addr", "127.0.0.1:2"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:2" || c.Limits.MaxBulkEvents != 9 || c.DataDir != "./data" {
		t.Fatalf("got %+v", c)
	}
}

var tokenRE = regexp.MustCompile(`admin token  (mst_[0-9a-f]+)`)

// TestAdminTokenShownOnce starts a node without MESHER_ADMIN_TOKEN: the
// first start prints a token that works; the second prints none and the
// token still works.
func TestAdminTokenShownOnce(t *testing.T) {
	env := nodeEnv(t, embeddedStore)
	delete(env, "MESHER_ADMIN_TOKEN")
	n := startNode(t, env)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = tokenRE.FindStringSubmatch(n.out.String()) // the banner's lines arrive one by one
	}
	if m == nil {
		t.Fatalf("no admin token in the banner:\n%s", n.out)
	}
	want(t, n.do("GET", "/api/v1/projects", m[1], nil), 200, "")
	n.kill()
	n2 := startNode(t, env)
	if tokenRE.MatchString(n2.out.String()) {
		t.Fatalf("second start printed a token again:\n%s", n2.out)
	}
	want(t, n2.do("GET", "/api/v1/projects", m[1], nil), 200, "")
	want(t, n2.do("GET", "/api/v1/projects", "mst_wrong", nil), 401, "unknown token") // invalid credentials
	if _, err := os.Stat(filepath.Join(env["MESHER_DATA_DIR"])); err != nil {
		t.Fatal(err)
	}
}
