//go:build unix

package gateway_test

import (
	"bufio"
	"os"
	"syscall"
	"testing"
)

var sigterm os.Signal = syscall.SIGTERM

func terminatedBy(state *os.ProcessState, sig os.Signal) bool {
	status, ok := state.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == sig
}

func TestUnregisterOnSigterm(t *testing.T) {
	k := newKong(t)
	cmd := helper(t, "signal", k.url, "10.0.3.1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }() // only matters if the test failed early
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper said %q", line)
	}
	if k.status("/services/gw") != 200 {
		t.Fatal("the helper did not register")
	}
	if err := cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if !terminatedBy(cmd.ProcessState, sigterm) {
		t.Errorf("helper ended with %v, want death by SIGTERM (the default action)", err)
	}
	for _, path := range []string{"/services/gw", "/upstreams/gw.service.consul"} {
		if status := k.status(path); status != 404 {
			t.Errorf("GET %s = %d after SIGTERM, want 404", path, status)
		}
	}
}
