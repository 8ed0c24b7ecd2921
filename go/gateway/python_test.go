package gateway_test

// Go and Python instances of one service against one Kong: the same
// entities, no writes when one re-registers what the other wrote, one
// upstream with both targets, and each unregisters its own.

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/config"
	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

// writeConfig writes a Microkubes service config file with this service section.
func writeConfig(t *testing.T, service map[string]interface{}) string {
	t.Helper()
	raw, err := json.Marshal(map[string]interface{}{"service": service, "gatewayUrl": "http://kong:8000"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// python runs `python -m bridge <command> --config file` against the emulator.
func python(t *testing.T, k *kong, command, file string, extra ...string) string {
	t.Helper()
	args := append([]string{"-m", "bridge", command, "--config", file, "--admin-url", k.url}, extra...)
	out, err := exec.Command(bridgePython, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("python -m bridge %s: %v\n%s", command, err, out)
	}
	return string(out)
}

func goGateway(t *testing.T, k *kong, file string, opts ...gateway.Option) *gateway.KongGateway {
	t.Helper()
	cfg, err := config.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	return gateway.New(k.url, &http.Client{}, cfg.Service, opts...)
}

// snapshot is every entity in Kong, keyed by kind and name, without the
// fields that differ between two identical registrations (ids, timestamps).
func (k *kong) snapshot() map[string]interface{} {
	k.t.Helper()
	clean := func(row map[string]interface{}, drop ...string) map[string]interface{} {
		out := map[string]interface{}{}
		for key, value := range row {
			out[key] = value
		}
		for _, key := range append(drop, "id", "created_at", "updated_at") {
			delete(out, key)
		}
		return out
	}
	snap := map[string]interface{}{}
	for _, row := range k.list("/services") {
		snap["service "+row["name"].(string)] = clean(row)
	}
	for _, row := range k.list("/routes") {
		snap["route "+row["name"].(string)] = clean(row, "service")
	}
	for _, row := range k.list("/upstreams") {
		name := row["name"].(string)
		snap["upstream "+name] = clean(row)
		for _, target := range k.list("/upstreams/" + name + "/targets") {
			snap["target "+name+" "+target["target"].(string)] = clean(target, "upstream")
		}
	}
	return snap
}

func TestGoWritesWhatPythonWrites(t *testing.T) {
	full := map[string]interface{}{
		"name": "mix", "port": 8081, "paths": []string{"/mix", "/v1/mix"}, "virtual_host": "mix.dc1.consul",
		"hosts": []string{"mix.example.com"}, "weight": 7, "slots": 64,
		"methods": []string{"GET", "POST"}, "strip_path": false, "preserve_host": true, "address": "10.9.0.1",
	}
	doc := map[string]interface{}{"name": "microservice-name", "port": 8080, "paths": []string{"/service-path"},
		"virtual_host": "microservice-name.service.consul", "weight": 10, "slots": 100}
	cases := []struct {
		name    string
		service map[string]interface{}
		pyArgs  []string
		goOpts  []gateway.Option
	}{
		{"every field, given address", full, nil, nil},
		{"documented config, detected address", doc, nil, nil},
		{"DNS mode", doc, []string{"--dns-mode"}, []gateway.Option{gateway.WithMode(gateway.ModeDNS)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := newKong(t)
			file := writeConfig(t, c.service)
			python(t, k, "register", file, c.pyArgs...)
			fromPython := k.snapshot()
			if len(fromPython) < 2 {
				t.Fatalf("Python registered nothing: %v", fromPython)
			}

			k.do("POST", "/_emulator/reset", nil, 204)
			g := goGateway(t, k, file, c.goOpts...)
			if err := g.SelfRegister(); err != nil {
				t.Fatal(err)
			}
			fromGo := k.snapshot()
			if !reflect.DeepEqual(fromGo, fromPython) {
				t.Fatalf("Go wrote\n%v\nPython wrote\n%v", fromGo, fromPython)
			}

			// Each one finds the other's entities already right.
			before := k.writes()
			if out := python(t, k, "register", file, c.pyArgs...); !strings.Contains(out, ": 0 write(s)") || k.writes() != before {
				t.Errorf("Python re-registering Go's entities wrote: %s", out)
			}
			k.do("POST", "/_emulator/reset", nil, 204)
			python(t, k, "register", file, c.pyArgs...)
			before = k.writes()
			if err := goGateway(t, k, file, c.goOpts...).SelfRegister(); err != nil {
				t.Fatal(err)
			}
			if after := k.writes(); after != before {
				t.Errorf("Go re-registering Python's entities wrote %d time(s)", after-before)
			}
		})
	}
}

func TestGoAndPythonInstancesShareOneUpstream(t *testing.T) {
	service := func(port int) map[string]interface{} {
		return map[string]interface{}{"name": "mix", "port": port, "paths": []string{"/mix"},
			"virtual_host": "mix.service.consul", "weight": 10, "slots": 100}
	}
	for _, pythonLast := range []bool{false, true} {
		name := "Python unregisters first"
		if pythonLast {
			name = "Go unregisters first"
		}
		t.Run(name, func(t *testing.T) {
			k := newKong(t)
			pyFile, goFile := writeConfig(t, service(8081)), writeConfig(t, service(8082))
			python(t, k, "register", pyFile)
			g := goGateway(t, k, goFile)
			if err := g.SelfRegister(); err != nil {
				t.Fatal(err)
			}
			if got := outcomes(g.Result()); !reflect.DeepEqual(got, []string{"upstream unchanged", "target created", "service unchanged", "route unchanged"}) {
				t.Errorf("Go joining Python's service: %v", got)
			}
			targets := k.names("/upstreams/mix.service.consul/targets", "target")
			sort.Strings(targets)
			if !reflect.DeepEqual(targets, []string{"127.0.0.1:8081", "127.0.0.1:8082"}) {
				t.Fatalf("targets = %v", targets)
			}
			for _, kind := range []string{"services", "routes", "upstreams"} {
				if n := len(k.list("/" + kind)); n != 1 {
					t.Errorf("%d %s, want 1", n, kind)
				}
			}

			unregisterPython := func() { python(t, k, "unregister", pyFile) }
			unregisterGo := func() {
				if err := g.Unregister(); err != nil {
					t.Fatal(err)
				}
			}
			first, second, survivor := unregisterPython, unregisterGo, "127.0.0.1:8082"
			if pythonLast {
				first, second, survivor = unregisterGo, unregisterPython, "127.0.0.1:8081"
			}
			first()
			if targets := k.names("/upstreams/mix.service.consul/targets", "target"); !reflect.DeepEqual(targets, []string{survivor}) {
				t.Errorf("after the first unregister: targets = %v, want [%s]", targets, survivor)
			}
			if k.status("/services/mix") != 200 || k.status("/routes/mix") != 200 {
				t.Error("the service went while an instance remains")
			}
			second()
			for _, path := range []string{"/services/mix", "/routes/mix", "/upstreams/mix.service.consul"} {
				if status := k.status(path); status != 404 {
					t.Errorf("GET %s = %d after both unregistered, want 404", path, status)
				}
			}
		})
	}
}
