package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// The end-to-end tests drive the real mesher binary, built once per run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func mesherBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mesher-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mesher")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// storeKind names the two stores every end-to-end test runs against.
type storeKind string

const (
	embeddedStore storeKind = "embedded"
	postgresStore storeKind = "postgres"
)

// forEachStore runs fn once per store.
func forEachStore(t *testing.T, fn func(t *testing.T, kind storeKind)) {
	for _, kind := range []storeKind{embeddedStore, postgresStore} {
		t.Run(string(kind), func(t *testing.T) { fn(t, kind) })
	}
}

// node is a running mesher process.
type node struct {
	t       testing.TB
	cmd     *exec.Cmd
	URL     string
	Admin   string // admin token
	env     map[string]string
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n lines the process wrote.
func (n *node) tail(lines int) string {
	out := strings.Split(strings.TrimRight(n.out.String(), "\n"), "\n")
	return strings.Join(out[max(0, len(out)-lines):], "\n")
}

// nodeEnv returns the environment of a node on the given store: a fresh
// data directory, and for PostgreSQL a fresh database.
func nodeEnv(t testing.TB, kind storeKind) map[string]string {
	env := map[string]string{
		"MESHER_HTTP_ADDR":   "127.0.0.1:0",
		"MESHER_DATA_DIR":    t.TempDir(),
		"MESHER_ADMIN_TOKEN": "test-admin-token-0123456789",
		"MESHER_LOG_LEVEL":   "warn",
	}
	if cache := os.Getenv("MESHER_TEST_CACHE"); cache != "" {
		// Share compiled plugins across nodes of the run: compiling a Go
		// module under -race takes many seconds.
		env["MESHER_WASM_CACHE_DIR"] = cache
	}
	if kind == postgresStore {
		env["MESHER_DATABASE_URL"] = pgtest.URL(t)
	}
	return env
}

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startNode starts mesher serve with env and waits until it answers.
func startNode(t testing.TB, env map[string]string) *node {
	t.Helper()
	n, err := launch(t, env)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// launch starts mesher serve with env and waits until it answers, or
// returns why it did not, with what the process wrote.
func launch(t testing.TB, env map[string]string) (*node, error) {
	t.Helper()
	n := &node{t: t, env: env, out: &syncBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(mesherBinary(t), "serve")
	n.cmd.Env = os.Environ()
	for k, v := range env {
		n.cmd.Env = append(n.cmd.Env, k+"="+v)
	}
	n.Admin = env["MESHER_ADMIN_TOKEN"]
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	n.cmd.Stderr = n.out
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			n.out.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				urls <- m[1]
			}
		}
	}()
	go func() {
		n.exitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("last log lines of node %s:\n%s", env["MESHER_NODE_NAME"], n.tail(40))
		}
	})
	select {
	case n.URL = <-urls:
	case <-n.exited:
		return nil, fmt.Errorf("mesher exited at start: %v\n%s", n.exitErr, n.out)
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("mesher did not start within 60s\n%s", n.out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(n.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("mesher never became healthy: %v\n%s", err, n.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the process with SIGKILL, as a crash would.
func (n *node) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop sends SIGTERM and returns the exit error once the process ends.
func (n *node) stop(timeout time.Duration) error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return n.exitErr
	case <-time.After(timeout):
		n.kill()
		return fmt.Errorf("did not exit within %v after SIGTERM", timeout)
	}
}

// response is an HTTP answer with its JSON body decoded.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r *response) str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

// do sends a request; body may be nil, []byte, string or a value to encode.
func (n *node) do(method, path, token string, body any, headers ...string) *response {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := &response{Status: resp.StatusCode, Header: resp.Header}
	out.Body, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(out.Body, &out.JSON)
	return out
}

// want fails unless r has the status (and, if given, an error containing msg).
func want(t testing.TB, r *response, status int, msg string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got status %d, want %d: %s", r.Status, status, r.Body)
	}
	if msg != "" && !strings.Contains(r.str("error"), msg) {
		t.Fatalf("got error %q, want it to contain %q", r.str("error"), msg)
	}
}

// project creates a project and returns its id, slug and key.
func (n *node) project(slug string) (id, key string) {
	n.t.Helper()
	r := n.do("POST", "/api/v1/projects", n.Admin, map[string]string{"name": "Project " + slug, "slug": slug})
	want(n.t, r, 201, "")
	return r.str("id"), r.str("api_key")
}

// uploadPlugin uploads a plugin built by make plugins.
func (n *node) uploadPlugin(name string) {
	n.t.Helper()
	r := n.do("PUT", "/api/v1/processors/"+name, n.Admin, fixture.Plugin(n.t, name))
	want(n.t, r, 201, "")
}
