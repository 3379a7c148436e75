package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A fleet is a child process (this test binary, re-run) holding many
// WebSocket clients, so that measuring the server's memory does not count
// the clients'. It dials FLEET_N clients to FLEET_URL, prints "ready", and
// each time every client has read an "end" message prints "done <n>" with
// the number of messages they read before it. It exits when its stdin
// closes.
const fleetURLEnv, fleetNEnv = "STREAM_TEST_FLEET_URL", "STREAM_TEST_FLEET_N"

func TestMain(m *testing.M) {
	if url := os.Getenv(fleetURLEnv); url != "" {
		n, _ := strconv.Atoi(os.Getenv(fleetNEnv))
		if err := runFleet(url, n); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runFleet(url string, n int) error {
	conns := make([]*websocket.Conn, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dialErr error
	)
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, _, err := websocket.DefaultDialer.Dial(url, nil)
				mu.Lock()
				conns[i], dialErr = c, errors.Join(dialErr, err)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if dialErr != nil {
		return dialErr
	}

	ends := make(chan int, n) // messages read before each "end"
	for _, c := range conns {
		go readFleetClient(c, ends)
	}
	fmt.Println("ready")
	go func() {
		for {
			total := 0
			for range n {
				total += <-ends
			}
			fmt.Println("done", total)
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// readFleetClient reads as fast as it can, without allocating per message.
func readFleetClient(c *websocket.Conn, ends chan<- int) {
	buf := make([]byte, 64)
	count := 0
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return
		}
		n, _ := io.ReadFull(r, buf)
		io.Copy(io.Discard, r)
		if bytes.HasPrefix(buf[:n], []byte(`{"type":"end"`)) {
			ends <- count
			count = 0
		} else {
			count++
		}
	}
}

type fleet struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startFleet starts a fleet of n clients of url and waits until all are
// connected.
func startFleet(tb testing.TB, url string, n int) *fleet {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetURLEnv+"="+url, fleetNEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	f := &fleet{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	tb.Cleanup(f.stop)
	if line := f.line(tb); line != "ready" {
		tb.Fatalf("fleet said %q, want ready", line)
	}
	return f
}

func (f *fleet) line(tb testing.TB) string {
	tb.Helper()
	if !f.out.Scan() {
		tb.Fatalf("fleet ended: %v", f.out.Err())
	}
	return f.out.Text()
}

// waitDone waits until every client has read an "end" message and returns
// how many messages they read before it, in all.
func (f *fleet) waitDone(tb testing.TB) int {
	tb.Helper()
	line := f.line(tb)
	n, err := strconv.Atoi(strings.TrimPrefix(line, "done "))
	if err != nil {
		tb.Fatalf("fleet said %q, want done <n>", line)
	}
	return n
}

func (f *fleet) stop() {
	if f.cmd.Process == nil || f.cmd.ProcessState != nil {
		return
	}
	f.stdin.Close()
	done := make(chan struct{})
	go func() {
		f.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testTimeout):
		f.cmd.Process.Kill()
		<-done
	}
}

// memInUse returns the heap and stack memory in use after a collection.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// perSubscriber measures what n idle subscribers cost the server: it
// starts a fleet of n clients of url, waits until count reports them all,
// and divides the growth of heap and stack in use by n.
func perSubscriber(tb testing.TB, url string, n int, count func() int) (f *fleet, heap, stack float64) {
	tb.Helper()
	heap0, stack0 := memInUse()
	f = startFleet(tb, url, n)
	waitFor(tb, "subscribers to register", func() bool { return count() == n })
	heap1, stack1 := memInUse()
	return f, (float64(heap1) - float64(heap0)) / float64(n), (float64(stack1) - float64(stack0)) / float64(n)
}

func TestMemoryPerSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("connects 1,000 clients")
	}
	const n, limit = 1000, 32 << 10
	h, srv := startHub(t, Config{})
	_, heap, stack := perSubscriber(t, streamURL(srv, "p", ""), n, h.Subscribers)
	t.Logf("per idle subscriber: heap %.0f B, stack %.0f B, total %.0f B", heap, stack, heap+stack)
	if raceEnabled {
		return
	}
	if heap+stack > limit {
		t.Errorf("an idle subscriber costs %.0f B, want at most %d", heap+stack, limit)
	}
}
