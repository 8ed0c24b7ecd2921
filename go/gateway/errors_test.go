package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

func TestKongDownIsTypedUnavailableWithinTheBudget(t *testing.T) {
	url := closedPortURL(t)
	g := gateway.New(url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithRetryBudget(500*time.Millisecond))
	started := time.Now()
	err := g.SelfRegister()
	elapsed := time.Since(started)
	if !errors.Is(err, gateway.ErrGatewayUnavailable) {
		t.Fatalf("err = %v, want ErrGatewayUnavailable", err)
	}
	var unavailable *gateway.UnavailableError
	if !errors.As(err, &unavailable) || unavailable.Attempts < 2 || unavailable.Err == nil {
		t.Fatalf("err = %#v, want an UnavailableError after several attempts with the cause", unavailable)
	}
	var registration *gateway.RegistrationError
	if !errors.As(err, &registration) || registration.Op != "registering" || registration.Service != "gw" {
		t.Errorf("err = %v, want a RegistrationError naming the service", err)
	}
	if !strings.Contains(err.Error(), "Kong unavailable after") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q does not say what happened", err)
	}
	// The budget bounds the retries; the margin covers one last attempt and scheduling.
	if elapsed > 5*time.Second {
		t.Errorf("gave up after %v with a 500ms budget", elapsed)
	}
}

func TestUnregisterReturnsItsError(t *testing.T) {
	g := gateway.New(closedPortURL(t), nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithRetryBudget(200*time.Millisecond))
	err := g.Unregister()
	var registration *gateway.RegistrationError
	if !errors.As(err, &registration) || registration.Op != "unregistering" || !errors.Is(err, gateway.ErrGatewayUnavailable) {
		t.Fatalf("err = %v, want an unregistering ErrGatewayUnavailable", err)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	for _, status := range []int{500, 503, 429} {
		k := newKong(t)
		k.faults(map[string]interface{}{"fail_next": 3, "error_status": status})
		quick := gateway.RetryPolicy{Budget: 10 * time.Second, Initial: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
		g := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithRetryPolicy(quick))
		if err := g.SelfRegister(); err != nil {
			t.Fatalf("after 3 x %d: %v", status, err)
		}
		if g.Result().Writes() != 4 || k.status("/services/gw") != 200 {
			t.Errorf("after 3 x %d: %v", status, g.Result().Actions)
		}
	}
}

func TestPersistent5xxEndsAsUnavailableWithKongsAnswer(t *testing.T) {
	k := newKong(t)
	k.faults(map[string]interface{}{"error_rate": 1.0, "error_status": 503})
	defer k.do("DELETE", "/_emulator/faults", nil, 204)
	err := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithRetryBudget(300*time.Millisecond)).SelfRegister()
	var unavailable *gateway.UnavailableError
	if !errors.As(err, &unavailable) || unavailable.Status != 503 || !strings.Contains(unavailable.Message, "injected by the emulator") {
		t.Fatalf("err = %v, want an UnavailableError carrying Kong's 503 and message", err)
	}
}

func TestRejectionCarriesKongsStatusAndMessage(t *testing.T) {
	k := newKong(t)
	cfg := gwConfig()
	cfg.Paths = []string{"no-slash"}
	err := gateway.New(k.url, nil, cfg, gateway.WithAddress("10.0.0.1")).SelfRegister()
	var rejected *gateway.KongError
	if !errors.As(err, &rejected) || !errors.Is(err, gateway.ErrRejected) {
		t.Fatalf("err = %v, want a KongError", err)
	}
	if rejected.Status != 400 || rejected.Method != "POST" || !strings.Contains(rejected.Message, "should start with: / (fixed path)") {
		t.Errorf("KongError = %+v", rejected)
	}
	if n := k.countOf("POST routes"); n != 1 {
		t.Errorf("POST routes sent %d times, want 1 (a 4xx is not retried)", n)
	}
}

func TestAnInvalidRequestIsNotRetried(t *testing.T) {
	k := newKong(t)
	g := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithHeader("Kong-Admin-Token", "bad\nvalue"))
	err := g.SelfRegister()
	if err == nil || errors.Is(err, gateway.ErrGatewayUnavailable) || !strings.Contains(err.Error(), "Kong-Admin-Token") {
		t.Errorf("err = %v, want the header refused at once, not retried", err)
	}
}

func TestUnownedEntityIsAConflictUnlessAdopted(t *testing.T) {
	k := newKong(t)
	k.do("POST", "/services", map[string]interface{}{"name": "gw", "host": "legacy.internal", "tags": []string{"ops"}}, 201)
	err := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1")).SelfRegister()
	var conflict *gateway.OwnershipConflictError
	if !errors.Is(err, gateway.ErrOwnershipConflict) || !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want an ownership conflict", err)
	}
	if conflict.Kind != "service" || conflict.Name != "gw" || conflict.OwnerTag != ownerTag {
		t.Errorf("conflict = %+v", conflict)
	}
	if host := k.get("/services/gw")["host"]; host != "legacy.internal" {
		t.Errorf("the unowned service was changed: host %v", host)
	}

	if err := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithAdopt()).SelfRegister(); err != nil {
		t.Fatal(err)
	}
	service := k.get("/services/gw")
	if service["host"] != "gw.service.consul" || !reflect.DeepEqual(service["tags"], []interface{}{ownerTag, "ops"}) {
		t.Errorf("adopted service = %v", service)
	}
}

func TestUnregisterKeepsATargetWeDoNotOwn(t *testing.T) {
	k := newKong(t)
	g := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"))
	if err := g.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	k.do("PATCH", "/upstreams/gw.service.consul/targets/10.0.0.1:8080", map[string]interface{}{"tags": []string{"ops"}}, 200)
	if err := g.Unregister(); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(g.Result()); !reflect.DeepEqual(got, []string{"target kept"}) {
		t.Errorf("actions = %v", got)
	}
	if k.status("/services/gw") != 200 {
		t.Error("the service went although a target remains")
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() {
		listener.Close()
		<-done
		for _, conn := range held {
			conn.Close()
		}
	})
	return "http://" + listener.Addr().String()
}

func TestZeroTimeoutClientGetsATimeout(t *testing.T) {
	client := &http.Client{}
	g := gateway.New(silentServer(t), client, gwConfig(), gateway.WithAddress("10.0.0.1"),
		gateway.WithTimeout(100*time.Millisecond), gateway.WithRetryBudget(300*time.Millisecond))
	err := g.SelfRegister()
	var unavailable *gateway.UnavailableError
	if !errors.As(err, &unavailable) || unavailable.Attempts < 2 || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
		t.Fatalf("err = %v, want retried client timeouts", err)
	}
	if client.Timeout != 0 {
		t.Error("the caller's client was modified")
	}
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := gateway.New(closedPortURL(t), nil, gwConfig(), gateway.WithAddress("10.0.0.1"))
	started := time.Now()
	err := g.SelfRegisterContext(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(started) > 5*time.Second {
		t.Error("kept retrying after the context was cancelled")
	}
}

func TestInvalidConfigIsRefusedBeforeAnyCall(t *testing.T) {
	cfg := &gateway.MicroserviceConfig{Name: "bad name", Port: 0}
	err := gateway.NewKongGateway(closedPortURL(t), nil, cfg).SelfRegister()
	var invalid *gateway.ConfigError
	if !errors.Is(err, gateway.ErrInvalidConfig) || !errors.As(err, &invalid) || len(invalid.Problems) != 3 {
		t.Fatalf("err = %v, want 3 problems (name, port, no paths/hosts)", err)
	}
	if err := gateway.NewKongGateway(closedPortURL(t), nil, nil).SelfRegister(); !errors.Is(err, gateway.ErrInvalidConfig) {
		t.Errorf("nil config: err = %v", err)
	}
}
