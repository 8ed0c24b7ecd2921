package gateway

import (
	"fmt"
	"regexp"
)

// MicroserviceConfig is the "service" section of a Microkubes service config:
// what to register on Kong and how.
//
// Weight and Slots of 0 mean "not set" (Kong's defaults, 100 and 10000); the
// other optional fields are left to Kong's defaults when nil or empty.
type MicroserviceConfig struct {
	// Name names the Kong service and route.
	Name string `json:"name"`
	// Port is where this instance listens: the target's port (or the
	// service's port in DNS mode).
	Port int `json:"port"`
	// Paths the route matches.
	Paths []string `json:"paths,omitempty"`
	// VirtualHost names the upstream (default "<name>.service.consul").
	VirtualHost string `json:"virtual_host,omitempty"`
	// Hosts (Host headers) the route matches.
	Hosts []string `json:"hosts,omitempty"`
	// Weight of this instance's target, 0..65535 (0: Kong's default).
	Weight int `json:"weight,omitempty"`
	// Slots of the upstream, 10..65536 (0: Kong's default).
	Slots int `json:"slots,omitempty"`

	// Extensions of this project, shared with the Python library's config
	// file (not in the Microkubes files):

	// Methods, Protocols, StripPath and PreserveHost set the route's fields.
	Methods      []string `json:"methods,omitempty"`
	Protocols    []string `json:"protocols,omitempty"`
	StripPath    *bool    `json:"strip_path,omitempty"`
	PreserveHost *bool    `json:"preserve_host,omitempty"`
	// Address is this instance's address as Kong should reach it; detected
	// when empty (see DetectLocalAddress).
	Address string `json:"address,omitempty"`
}

var kongName = regexp.MustCompile(`^[A-Za-z0-9.\-_~]+$`)

// Validate checks the fields as the Python library does; the error is a
// *ConfigError naming source and every faulty field.
func (c *MicroserviceConfig) Validate(source string) error {
	if c == nil {
		return &ConfigError{Source: source, Problems: []string{"service: required section missing"}}
	}
	var problems []string
	add := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.Name == "" {
		add("service.name: required field missing")
	} else if !kongName.MatchString(c.Name) {
		add("service.name: expected a Kong name (letters, digits, '.', '-', '_' or '~') (got %q)", c.Name)
	}
	if c.Port < 1 || c.Port > 65535 {
		add("service.port: expected an integer from 1 to 65535 (got %d)", c.Port)
	}
	if c.Weight < 0 || c.Weight > 65535 {
		add("service.weight: expected an integer from 0 to 65535 (got %d)", c.Weight)
	}
	if c.Slots != 0 && (c.Slots < 10 || c.Slots > 65536) {
		add("service.slots: expected an integer from 10 to 65536 (got %d)", c.Slots)
	}
	if len(c.Paths) == 0 && len(c.Hosts) == 0 {
		add("service: expected at least one of 'paths' or 'hosts' so Kong can route")
	}
	if problems != nil {
		return &ConfigError{Source: source, Problems: problems}
	}
	return nil
}

// UpstreamName is the upstream (and DNS) name: VirtualHost, else
// "<name>.service.consul".
func (c *MicroserviceConfig) UpstreamName() string {
	if c.VirtualHost != "" {
		return c.VirtualHost
	}
	return c.Name + ".service.consul"
}
