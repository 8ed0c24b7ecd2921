// Package config reads the Microkubes service config file and the
// environment that points at it.
//
// The file's shape is the one in the Microkubes documentation:
//
//	{"service": {"name": "...", "port": 8080, "paths": ["/x"],
//	             "virtual_host": "x.service.consul", "hosts": [...],
//	             "weight": 10, "slots": 100},
//	 "gatewayUrl": "http://kong:8000", "gatewayAdminUrl": "http://kong:8001"}
//
// Other keys are ignored; "microservice" is accepted for "service" (some
// Microkubes services used that key), as in the Python library.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/kong-consul-bridge/kong-consul-bridge/go/gateway"
)

const (
	// DefaultAdminURL is used when $API_GATEWAY_URL is unset.
	DefaultAdminURL = gateway.DefaultAdminURL
	// DefaultConfigFile is used when $SERVICE_CONFIG_FILE is unset.
	DefaultConfigFile = "/run/secrets/microservice_user_config.json"
)

// ServiceConfig is the whole service config file.
type ServiceConfig struct {
	Service         *gateway.MicroserviceConfig `json:"service"`
	GatewayURL      string                      `json:"gatewayUrl,omitempty"`
	GatewayAdminURL string                      `json:"gatewayAdminUrl,omitempty"`
}

// UnmarshalJSON accepts "microservice" as another name for "service".
func (c *ServiceConfig) UnmarshalJSON(data []byte) error {
	type plain ServiceConfig
	var raw struct {
		plain
		Microservice *gateway.MicroserviceConfig `json:"microservice"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = ServiceConfig(raw.plain)
	if c.Service == nil {
		c.Service = raw.Microservice
	}
	return nil
}

// LoadConfig reads and validates a service config file. Its errors are
// *gateway.ConfigError (errors.Is(err, gateway.ErrInvalidConfig)) naming the
// file and what is wrong.
func LoadConfig(path string) (*ServiceConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pathErr *os.PathError
		reason := err.Error()
		if errors.As(err, &pathErr) {
			reason = pathErr.Err.Error()
		}
		return nil, &gateway.ConfigError{Source: path, Problems: []string{"cannot read service config: " + reason}}
	}
	return ParseConfig(data, path)
}

// ParseConfig validates already-read JSON; source names it in errors.
func ParseConfig(data []byte, source string) (*ServiceConfig, error) {
	var cfg ServiceConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, &gateway.ConfigError{Source: source, Problems: []string{describeJSONError(data, err)}}
	}
	if err := cfg.Service.Validate(source); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func describeJSONError(data []byte, err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line, column := position(data, syntax.Offset)
		return fmt.Sprintf("not valid JSON at line %d, column %d: %v", line, column, err)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("%s: expected %s (got a JSON %s)", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return err.Error()
}

func position(data []byte, offset int64) (line, column int) {
	line, column = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(data)); i++ {
		column++
		if data[i] == '\n' {
			line, column = line+1, 1
		}
	}
	return line, column
}

// LoadGatewaySettings is the Microkubes example's helper: the Admin API URL
// from $API_GATEWAY_URL (default http://localhost:8001) and the config file
// from $SERVICE_CONFIG_FILE (default /run/secrets/microservice_user_config.json).
func LoadGatewaySettings() (adminURL, configFile string) {
	adminURL = os.Getenv("API_GATEWAY_URL")
	if adminURL == "" {
		adminURL = DefaultAdminURL
	}
	configFile = os.Getenv("SERVICE_CONFIG_FILE")
	if configFile == "" {
		configFile = DefaultConfigFile
	}
	return adminURL, configFile
}

// AdminURL is where to register, as the Python library decides it:
// $API_GATEWAY_URL, else the file's gatewayAdminUrl, else the default.
func (c *ServiceConfig) AdminURL() string {
	if url := os.Getenv("API_GATEWAY_URL"); url != "" {
		return url
	}
	if c != nil && c.GatewayAdminURL != "" {
		return c.GatewayAdminURL
	}
	return DefaultAdminURL
}
