package gateway_test

// Tests that need separate processes re-run this test binary as a helper
// (GATEWAY_TEST_HELPER names what it does); TestMain dispatches to runHelper.

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

const helperEnv = "GATEWAY_TEST_HELPER"

func runHelper(name string) int {
	g := gateway.New(os.Getenv("GATEWAY_TEST_ADMIN"), nil, gwConfig(), gateway.WithAddress(os.Getenv("GATEWAY_TEST_ADDRESS")))
	if err := g.SelfRegister(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if name == "register" {
		return 0
	}
	if name == "signal" {
		gateway.UnregisterOnSignal(g, nil)
		fmt.Println("ready")
		select {} // until SIGTERM
	}
	fmt.Fprintln(os.Stderr, "unknown helper", name)
	return 2
}

func helper(t *testing.T, name, admin, address string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, "GATEWAY_TEST_ADMIN="+admin, "GATEWAY_TEST_ADDRESS="+address)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestConcurrentProcessesShareOneUpstream(t *testing.T) {
	k := newKong(t)
	const instances = 6
	var wg sync.WaitGroup
	for i := 0; i < instances; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := helper(t, "register", k.url, fmt.Sprintf("10.0.2.%d", i)).Run(); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	assertOneServiceWithTargets(t, k, "10.0.2.", instances)
}
