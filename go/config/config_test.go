package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigReadsTheDocumentedFile(t *testing.T) {
	path := writeFile(t, `{
	  "service": {"name": "microservice-name", "port": 8080, "paths": ["/service-path"],
	              "virtual_host": "microservice-name.service.consul", "hosts": ["a.example.com"],
	              "weight": 10, "slots": 100},
	  "gatewayUrl": "http://kong:8000", "gatewayAdminUrl": "http://kong:8001",
	  "database": {"dbName": "mongodb"}, "version": "1.0"
	}`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &gateway.MicroserviceConfig{
		Name: "microservice-name", Port: 8080, Paths: []string{"/service-path"},
		VirtualHost: "microservice-name.service.consul", Hosts: []string{"a.example.com"}, Weight: 10, Slots: 100,
	}
	if !reflect.DeepEqual(cfg.Service, want) {
		t.Errorf("service = %+v, want %+v", cfg.Service, want)
	}
	if cfg.GatewayURL != "http://kong:8000" || cfg.GatewayAdminURL != "http://kong:8001" {
		t.Errorf("gateway URLs = %q, %q", cfg.GatewayURL, cfg.GatewayAdminURL)
	}
}

func TestMicroserviceIsAnotherNameForService(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"microservice": {"name": "jwt-issuer", "port": 8080, "paths": ["/jwt"]}}`), "jwt.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service.Name != "jwt-issuer" {
		t.Errorf("service = %+v", cfg.Service)
	}
}

func TestConfigErrorsNameTheFileAndTheField(t *testing.T) {
	cases := map[string]string{
		`{"service": {"name": "a b", "port": 70000, "slots": 5}}`: "service.name: expected a Kong name",
		`{"service": {"name": "a", "port": 1}}`:                   "at least one of 'paths' or 'hosts'",
		`{"service": {"name": "a", "port": "http", "paths": []}}`: "service.port: expected int (got a JSON string)",
		`{"gatewayUrl": "x"}`:                                     "service: required section missing",
		"{\n  \"service\": {,}\n}":                                "not valid JSON at line 2, column 15",
	}
	for text, want := range cases {
		path := writeFile(t, text)
		_, err := LoadConfig(path)
		if !errors.Is(err, gateway.ErrInvalidConfig) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("LoadConfig(%s) = %v, want %q from %s", text, err, want, path)
		}
	}
	var invalid *gateway.ConfigError
	_, err := ParseConfig([]byte(`{"service": {"name": "a b", "port": 70000, "slots": 5}}`), "x.json")
	if !errors.As(err, &invalid) || len(invalid.Problems) != 4 {
		t.Errorf("err = %v, want name, port, slots and routing problems", err)
	}
}

func TestMissingFileIsAConfigError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.json")
	_, err := LoadConfig(path)
	if !errors.Is(err, gateway.ErrInvalidConfig) || err.Error() != path+": invalid service config: cannot read service config: no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

func TestGatewaySettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("API_GATEWAY_URL", "")
	t.Setenv("SERVICE_CONFIG_FILE", "")
	if url, file := LoadGatewaySettings(); url != "http://localhost:8001" || file != "/run/secrets/microservice_user_config.json" {
		t.Errorf("defaults = %q, %q", url, file)
	}
	cfg := &ServiceConfig{GatewayAdminURL: "http://kong:8001"}
	if got := cfg.AdminURL(); got != "http://kong:8001" {
		t.Errorf("AdminURL without env = %q, want the file's", got)
	}
	if got := (&ServiceConfig{}).AdminURL(); got != DefaultAdminURL {
		t.Errorf("AdminURL without env or file = %q", got)
	}
	t.Setenv("API_GATEWAY_URL", "http://admin:9001")
	t.Setenv("SERVICE_CONFIG_FILE", "/etc/config/config.json")
	if url, file := LoadGatewaySettings(); url != "http://admin:9001" || file != "/etc/config/config.json" {
		t.Errorf("from env = %q, %q", url, file)
	}
	if got := cfg.AdminURL(); got != "http://admin:9001" {
		t.Errorf("AdminURL = %q, want the environment's", got)
	}
}
