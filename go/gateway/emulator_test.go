package gateway_test

// The tests talk to the project's Kong Admin API emulator, started once per
// test binary as a separate process: `python -m bridge emulate kong --port 0`.
// The Python comes from $KONG_BRIDGE_PYTHON (the Makefile sets it), else from
// the nearest .venv/bin/python above this directory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	kongURL       string
	bridgePython  string
	emulatorSkips string // why emulator tests skip, when they do
)

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	// Pdeathsig follows the thread that started the child: keep this one.
	runtime.LockOSThread()
	stop, err := startEmulator()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func findPython() (string, error) {
	if python := os.Getenv("KONG_BRIDGE_PYTHON"); python != "" {
		if _, err := os.Stat(python); err != nil {
			return "", fmt.Errorf("KONG_BRIDGE_PYTHON=%s: %v", python, err)
		}
		return python, nil
	}
	dir, _ := os.Getwd()
	for {
		candidate := filepath.Join(dir, ".venv", "bin", "python")
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

func startEmulator() (stop func(), err error) {
	python, err := findPython()
	if err != nil {
		return nil, err
	}
	if python == "" {
		emulatorSkips = "no .venv/bin/python found and KONG_BRIDGE_PYTHON unset (run `make install`)"
		return func() {}, nil
	}
	bridgePython = python
	cmd := exec.Command(python, "-m", "bridge", "emulate", "kong", "--host", "127.0.0.1", "--port", "0")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the Kong emulator: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) == 0 || !strings.HasPrefix(fields[len(fields)-1], "http://") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the Kong emulator did not print its URL (got %q, %v)", line, err)
	}
	kongURL = fields[len(fields)-1]
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, nil
}

// kong is a test's view of the emulator: reset on creation, raw JSON access.
type kong struct {
	t   *testing.T
	url string
}

func newKong(t *testing.T) *kong {
	t.Helper()
	if kongURL == "" {
		t.Skip(emulatorSkips)
	}
	k := &kong{t: t, url: kongURL}
	k.do("POST", "/_emulator/reset", nil, 204)
	return k
}

// do sends a request and fails the test unless the status is one of want.
func (k *kong) do(method, path string, body interface{}, want ...int) map[string]interface{} {
	k.t.Helper()
	status, decoded := k.request(method, path, body)
	for _, w := range want {
		if status == w {
			return decoded
		}
	}
	k.t.Fatalf("%s %s: status %d, want %v (%v)", method, path, status, want, decoded)
	return nil
}

func (k *kong) request(method, path string, body interface{}) (int, map[string]interface{}) {
	k.t.Helper()
	var reader io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		reader = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, k.url+path, reader)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var decoded map[string]interface{}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &decoded); err != nil {
			k.t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, decoded
}

func (k *kong) get(path string) map[string]interface{} {
	k.t.Helper()
	return k.do("GET", path, nil, 200)
}

func (k *kong) status(path string) int {
	k.t.Helper()
	status, _ := k.request("GET", path, nil)
	return status
}

func (k *kong) list(path string) []map[string]interface{} {
	k.t.Helper()
	var rows []map[string]interface{}
	for _, item := range k.get(path)["data"].([]interface{}) {
		rows = append(rows, item.(map[string]interface{}))
	}
	return rows
}

func (k *kong) names(path, field string) []string {
	k.t.Helper()
	var names []string
	for _, row := range k.list(path) {
		names = append(names, row[field].(string))
	}
	return names
}

func (k *kong) counters() map[string]interface{} {
	k.t.Helper()
	return k.get("/_emulator/counters")
}

func (k *kong) writes() int {
	k.t.Helper()
	return int(k.counters()["writes"].(float64))
}

func (k *kong) countOf(methodAndKind string) int {
	k.t.Helper()
	n, _ := k.counters()["by_method_and_kind"].(map[string]interface{})[methodAndKind].(float64)
	return int(n)
}

func (k *kong) faults(faults map[string]interface{}) {
	k.t.Helper()
	k.do("PUT", "/_emulator/faults", faults, 200)
}

// closedPortURL is an Admin URL where nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + listener.Addr().String()
	listener.Close()
	return url
}
