package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strconv"
)

// DefaultOwner is the owner id of self-registration, shared with the Python
// library: entities carry the tag "managed-by:" + owner.
const DefaultOwner = "kong-bridge-selfreg"

// OwnerTagPrefix starts every owner tag; the bridge daemon uses it too.
const OwnerTagPrefix = "managed-by:"

// OwnerTag is the tag that marks an entity as owned by owner.
func OwnerTag(owner string) string { return OwnerTagPrefix + owner }

// Mode chooses how Kong reaches the instances.
type Mode int

const (
	// ModeAuto: upstream and target when this instance's address is known,
	// else DNS mode.
	ModeAuto Mode = iota
	// ModeUpstream: upstream and target; an error when no address is known.
	ModeUpstream
	// ModeDNS: no upstream; the service's host:port is virtual_host:port and
	// Kong resolves it through DNS (Consul's).
	ModeDNS
)

type body = map[string]interface{}

// desiredState is what one instance asks of Kong, as Admin API bodies. In
// DNS mode upstreamName is empty and there is no target.
type desiredState struct {
	upstreamName string
	upstream     body
	target       string // "host:port"
	targetBody   body
	serviceName  string
	service      body
	routeName    string
	route        body // without its "service" reference
}

// formatTarget renders host:port, bracketing IPv6 addresses.
func formatTarget(address string, port int) string {
	return net.JoinHostPort(address, strconv.Itoa(port))
}

// planState builds the entities for cfg; address "" means DNS mode. As in
// the Python library, in upstream mode the service's port is left to Kong's
// default, because Kong uses each target's port.
func planState(cfg *MicroserviceConfig, address, owner string) desiredState {
	tags := []string{OwnerTag(owner)}
	route := body{"name": cfg.Name, "tags": tags}
	if len(cfg.Paths) > 0 {
		route["paths"] = cfg.Paths
	}
	if len(cfg.Hosts) > 0 {
		route["hosts"] = cfg.Hosts
	}
	if cfg.Methods != nil {
		route["methods"] = cfg.Methods
	}
	if cfg.Protocols != nil {
		route["protocols"] = cfg.Protocols
	}
	if cfg.StripPath != nil {
		route["strip_path"] = *cfg.StripPath
	}
	if cfg.PreserveHost != nil {
		route["preserve_host"] = *cfg.PreserveHost
	}
	state := desiredState{serviceName: cfg.Name, routeName: cfg.Name, route: normalize(route)}
	dnsName := cfg.UpstreamName()
	if address == "" {
		state.service = normalize(body{"name": cfg.Name, "host": dnsName, "port": cfg.Port, "tags": tags})
		return state
	}
	upstream := body{"name": dnsName, "tags": tags}
	if cfg.Slots != 0 {
		upstream["slots"] = cfg.Slots
	}
	state.upstreamName = dnsName
	state.upstream = normalize(upstream)
	state.target = formatTarget(address, cfg.Port)
	target := body{"target": state.target, "tags": tags}
	if cfg.Weight != 0 {
		target["weight"] = cfg.Weight
	}
	state.targetBody = normalize(target)
	state.service = normalize(body{"name": cfg.Name, "host": dnsName, "tags": tags})
	return state
}

// normalize gives a body the types decoded JSON has (float64, []interface{}),
// so it compares with what Kong answers.
func normalize(b body) body {
	raw, err := json.Marshal(b)
	if err != nil {
		panic(err) // bodies are built from strings, numbers and bools only
	}
	var out body
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// errNoAddress: upstream mode was asked for but no address is known.
var errNoAddress = errors.New("upstream mode needs the instance address; none given or found")

// resolveAddress is the instance address: given, else detected (none in DNS mode).
func resolveAddress(ctx context.Context, mode Mode, given, adminURL string) (string, error) {
	if mode == ModeDNS {
		return "", nil
	}
	address := given
	if address == "" {
		address = DetectLocalAddress(ctx, adminURL)
	}
	if address == "" && mode == ModeUpstream {
		return "", errNoAddress
	}
	return address, nil
}

// DetectLocalAddress is the local address of the route towards the Admin
// API's host, or "" when there is none. A connected UDP socket makes the
// kernel pick the source address it would use for that destination without
// sending anything: unlike "the first non-loopback interface", this is the
// right network in a multi-homed container. The Python library does the same.
func DetectLocalAddress(ctx context.Context, adminURL string) string {
	parsed, err := url.Parse(adminURL)
	if err != nil || parsed.Hostname() == "" {
		return ""
	}
	port, _ := strconv.Atoi(parsed.Port())
	if port == 0 {
		port = 80
		if parsed.Scheme == "https" {
			port = 443
		}
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, parsed.Hostname())
	if err != nil {
		return ""
	}
	for _, ip := range ips {
		conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip.IP, Port: port, Zone: ip.Zone})
		if err != nil {
			continue
		}
		local, _ := conn.LocalAddr().(*net.UDPAddr)
		conn.Close()
		if local != nil && !local.IP.IsUnspecified() {
			return local.IP.String() // without the zone, as Kong's targets have none
		}
	}
	return ""
}
