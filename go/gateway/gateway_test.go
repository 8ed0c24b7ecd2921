package gateway_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/config"
	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

const ownerTag = "managed-by:kong-bridge-selfreg"

func tagged(row map[string]interface{}) bool {
	tags, _ := row["tags"].([]interface{})
	return len(tags) == 1 && tags[0] == ownerTag
}

func outcomes(result gateway.Result) []string {
	var out []string
	for _, a := range result.Actions {
		out = append(out, a.Kind+" "+a.Outcome)
	}
	return out
}

func gwConfig() *gateway.MicroserviceConfig {
	return &gateway.MicroserviceConfig{
		Name:        "gw",
		Port:        8080,
		Paths:       []string{"/gw"},
		VirtualHost: "gw.service.consul",
		Hosts:       []string{"gw.example.com"},
		Weight:      10,
		Slots:       100,
	}
}

func TestRegisterAndUnregisterWriteTheExpectedEntities(t *testing.T) {
	k := newKong(t)
	g := gateway.New(k.url, &http.Client{}, gwConfig(), gateway.WithAddress("10.5.0.1"))
	if err := g.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	if got := g.Result().Writes(); got != 4 {
		t.Errorf("writes = %d, want 4 (%v)", got, g.Result().Actions)
	}

	upstream := k.get("/upstreams/gw.service.consul")
	if upstream["slots"] != 100.0 || !tagged(upstream) {
		t.Errorf("upstream = %v", upstream)
	}
	target := k.get("/upstreams/gw.service.consul/targets/10.5.0.1:8080")
	if target["weight"] != 10.0 || !tagged(target) {
		t.Errorf("target = %v", target)
	}
	service := k.get("/services/gw")
	if service["host"] != "gw.service.consul" || service["port"] != 80.0 || !tagged(service) {
		t.Errorf("service = %v (port must stay Kong's default in upstream mode)", service)
	}
	route := k.get("/routes/gw")
	want := map[string]interface{}{
		"paths":   []interface{}{"/gw"},
		"hosts":   []interface{}{"gw.example.com"},
		"service": map[string]interface{}{"id": service["id"]},
	}
	for key, value := range want {
		if !reflect.DeepEqual(route[key], value) {
			t.Errorf("route[%s] = %v, want %v", key, route[key], value)
		}
	}
	if !tagged(route) {
		t.Errorf("route tags = %v", route["tags"])
	}

	if err := g.Unregister(); err != nil {
		t.Fatal(err)
	}
	wantActions := []string{"target deleted", "route deleted", "service deleted", "upstream deleted"}
	if got := outcomes(g.Result()); !reflect.DeepEqual(got, wantActions) {
		t.Errorf("unregister actions = %v, want %v", got, wantActions)
	}
	for _, path := range []string{"/services/gw", "/routes/gw", "/upstreams/gw.service.consul"} {
		if status := k.status(path); status != 404 {
			t.Errorf("GET %s = %d after unregister, want 404", path, status)
		}
	}
	if err := g.Unregister(); err != nil {
		t.Errorf("second Unregister: %v (want idempotent)", err)
	}
}

// The Microkubes example, verbatim but for the module path.
func TestDocumentedExample(t *testing.T) {
	k := newKong(t)
	file := filepath.Join(t.TempDir(), "config.json")
	doc := `{"service": {"name": "microservice-name", "port": 8080, "paths": ["/service-path"],
	          "virtual_host": "microservice-name.service.consul", "weight": 10, "slots": 100},
	         "gatewayUrl": "http://kong:8000", "gatewayAdminUrl": "http://kong:8001"}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("API_GATEWAY_URL", k.url)
	t.Setenv("SERVICE_CONFIG_FILE", file)

	gatewayAdminURL, configFile := config.LoadGatewaySettings()
	serviceConfig, err := config.LoadConfig(configFile)
	if err != nil {
		t.Fatal(err)
	}
	registration := gateway.NewKongGateway(gatewayAdminURL, &http.Client{}, serviceConfig.Service)
	if err := registration.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	// The address detected towards the Admin API host (127.0.0.1 here).
	targets := k.names("/upstreams/microservice-name.service.consul/targets", "target")
	if !reflect.DeepEqual(targets, []string{"127.0.0.1:8080"}) {
		t.Errorf("targets = %v", targets)
	}
	if err := registration.Unregister(); err != nil {
		t.Fatal(err)
	}
	if status := k.status("/services/microservice-name"); status != 404 {
		t.Errorf("service still there after Unregister (%d)", status)
	}
}

func TestReregistrationWritesNothing(t *testing.T) {
	k := newKong(t)
	if err := gateway.New(k.url, nil, gwConfig()).SelfRegister(); err != nil {
		t.Fatal(err)
	}
	before := k.writes()
	again := gateway.New(k.url, nil, gwConfig())
	if err := again.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	if after := k.writes(); after != before {
		t.Errorf("re-registration wrote %d time(s)", after-before)
	}
	want := []string{"upstream unchanged", "target unchanged", "service unchanged", "route unchanged"}
	if got := outcomes(again.Result()); !reflect.DeepEqual(got, want) {
		t.Errorf("actions = %v, want %v", got, want)
	}
}

func TestChangedPathsUpdateTheRouteOnly(t *testing.T) {
	k := newKong(t)
	if err := gateway.New(k.url, nil, gwConfig()).SelfRegister(); err != nil {
		t.Fatal(err)
	}
	cfg := gwConfig()
	cfg.Paths = []string{"/new", "/v2"}
	g := gateway.New(k.url, nil, cfg)
	if err := g.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, a := range g.Result().Actions {
		if a.Outcome != "unchanged" {
			changed = append(changed, a.String())
		}
	}
	if !reflect.DeepEqual(changed, []string{"route gw: updated (paths)"}) {
		t.Errorf("changed = %v", changed)
	}
	if paths := k.get("/routes/gw")["paths"]; !reflect.DeepEqual(paths, []interface{}{"/new", "/v2"}) {
		t.Errorf("paths = %v", paths)
	}
}

func TestWeightChangePatchesTheTargetOnly(t *testing.T) {
	k := newKong(t)
	if err := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.9")).SelfRegister(); err != nil {
		t.Fatal(err)
	}
	cfg := gwConfig()
	cfg.Weight = 55
	if err := gateway.New(k.url, nil, cfg, gateway.WithAddress("10.0.0.9")).SelfRegister(); err != nil {
		t.Fatal(err)
	}
	if n := k.countOf("PATCH targets"); n != 1 {
		t.Errorf("PATCH targets = %d, want 1", n)
	}
	if w := k.get("/upstreams/gw.service.consul/targets/10.0.0.9:8080")["weight"]; w != 55.0 {
		t.Errorf("weight = %v, want 55", w)
	}
}

func TestDNSModeHasNoUpstream(t *testing.T) {
	k := newKong(t)
	cfg := &gateway.MicroserviceConfig{Name: "d", Port: 5000, Paths: []string{"/d"}, VirtualHost: "d.service.consul"}
	g := gateway.New(k.url, nil, cfg, gateway.WithMode(gateway.ModeDNS))
	if err := g.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	service := k.get("/services/d")
	if service["host"] != "d.service.consul" || service["port"] != 5000.0 {
		t.Errorf("service = %v", service)
	}
	if upstreams := k.list("/upstreams"); len(upstreams) != 0 {
		t.Errorf("upstreams = %v, want none", upstreams)
	}
	// As in the Python library, unregistering in DNS mode leaves the shared
	// service alone unless asked to remove it.
	if err := g.Unregister(); err != nil {
		t.Fatal(err)
	}
	if k.status("/services/d") != 200 {
		t.Error("DNS-mode Unregister removed the service")
	}
	remover := gateway.New(k.url, nil, cfg, gateway.WithMode(gateway.ModeDNS), gateway.WithRemoveServiceOnUnregister())
	if err := remover.Unregister(); err != nil {
		t.Fatal(err)
	}
	if k.status("/services/d") != 404 || k.status("/routes/d") != 404 {
		t.Error("WithRemoveServiceOnUnregister left the service or route")
	}
}

func TestUnregisterLeavesOtherInstances(t *testing.T) {
	k := newKong(t)
	first := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"))
	second := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.2"))
	for _, g := range []*gateway.KongGateway{first, second} {
		if err := g.SelfRegister(); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Unregister(); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(first.Result()); !reflect.DeepEqual(got, []string{"target deleted"}) {
		t.Errorf("first unregister = %v", got)
	}
	if targets := k.names("/upstreams/gw.service.consul/targets", "target"); !reflect.DeepEqual(targets, []string{"10.0.0.2:8080"}) {
		t.Errorf("targets = %v", targets)
	}
	if k.status("/services/gw") != 200 {
		t.Fatal("the service went with the first instance")
	}
	if err := second.Unregister(); err != nil {
		t.Fatal(err)
	}
	want := []string{"target deleted", "route deleted", "service deleted", "upstream deleted"}
	if got := outcomes(second.Result()); !reflect.DeepEqual(got, want) {
		t.Errorf("last unregister = %v, want %v", got, want)
	}
}

func TestRemoveServiceKeepsForeignRoutes(t *testing.T) {
	k := newKong(t)
	g := gateway.New(k.url, nil, gwConfig(), gateway.WithAddress("10.0.0.1"), gateway.WithRemoveServiceOnUnregister())
	if err := g.SelfRegister(); err != nil {
		t.Fatal(err)
	}
	k.do("POST", "/services/gw/routes", map[string]interface{}{"name": "hand-made", "paths": []string{"/hand"}}, 201)
	if err := g.Unregister(); err != nil {
		t.Fatal(err)
	}
	got := outcomes(g.Result())
	want := []string{"target deleted", "route deleted", "service kept"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("actions = %v, want %v", got, want)
	}
	if k.status("/routes/hand-made") != 200 || k.status("/services/gw") != 200 {
		t.Error("an entity we do not own was removed")
	}
}

func TestConcurrentGoroutinesShareOneUpstream(t *testing.T) {
	k := newKong(t)
	const instances = 16
	var wg sync.WaitGroup
	errs := make(chan error, instances)
	for i := 0; i < instances; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := gwConfig()
			errs <- gateway.New(k.url, nil, cfg, gateway.WithAddress(fmt.Sprintf("10.0.1.%d", i))).SelfRegister()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	assertOneServiceWithTargets(t, k, "10.0.1.", instances)
}

func assertOneServiceWithTargets(t *testing.T, k *kong, prefix string, n int) {
	t.Helper()
	for _, kind := range []string{"services", "routes", "upstreams"} {
		if rows := k.list("/" + kind); len(rows) != 1 {
			t.Errorf("%d %s, want 1", len(rows), kind)
		}
	}
	got := k.names("/upstreams/gw.service.consul/targets", "target")
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("%s%d:8080", prefix, i))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets = %v, want %v", got, want)
	}
}
