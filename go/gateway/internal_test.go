package gateway

// Units without a wire: diffing, naming, planning, the retry decision.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"syscall"
	"testing"
	"time"
)

func TestChangedFieldsComparesAsKongDoes(t *testing.T) {
	actual := normalize(body{
		"name": "s", "paths": []string{"/a", "/b"}, "methods": []string{"POST", "GET"},
		"tags": []string{"x", "managed-by:kong-bridge-selfreg"}, "hosts": nil,
		"service": map[string]interface{}{"id": "1"}, "slots": 100, "strip_path": true,
	})
	cases := []struct {
		desired body
		want    []string
	}{
		{body{"name": "s", "slots": 100}, nil},
		{body{"methods": []string{"GET", "POST"}}, nil},                           // a set
		{body{"tags": []string{"managed-by:kong-bridge-selfreg", "x"}}, nil},      // a set
		{body{"paths": []string{"/b", "/a"}}, []string{"paths"}},                  // order matters
		{body{"hosts": []string{}}, nil},                                          // [] is Kong's null
		{body{"service": map[string]interface{}{"id": "1"}}, nil},                 // nested
		{body{"service": map[string]interface{}{"id": "2"}}, []string{"service"}}, // nested change
		{body{"slots": 64, "strip_path": false, "name": "s"}, []string{"slots", "strip_path"}},
		{body{"weight": 10}, []string{"weight"}}, // missing in actual
	}
	for _, c := range cases {
		got := sortedKeys(changedFields(normalize(c.desired), actual))
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("changedFields(%v) = %v, want %v", c.desired, got, c.want)
		}
	}
}

func TestSegmentQuotesAsPython(t *testing.T) {
	cases := map[string]string{
		"gw.service.consul": "gw.service.consul",
		"10.0.0.1:8080":     "10.0.0.1%3A8080",
		"[::1]:80":          "%5B%3A%3A1%5D%3A80",
		"a b/c~d_e-f":       "a%20b%2Fc~d_e-f",
	}
	for in, want := range cases {
		if got := segment(in); got != want {
			t.Errorf("segment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlanStateShapes(t *testing.T) {
	falseValue := false
	cfg := &MicroserviceConfig{Name: "s", Port: 81, Paths: []string{"/s"}, Weight: 7, Slots: 64,
		Methods: []string{}, StripPath: &falseValue}
	tags := []interface{}{"managed-by:me"}

	upstream := planState(cfg, "fd00::1", "me")
	if upstream.target != "[fd00::1]:81" || upstream.upstreamName != "s.service.consul" {
		t.Errorf("target %q on %q", upstream.target, upstream.upstreamName)
	}
	wantService := body{"name": "s", "host": "s.service.consul", "tags": tags}
	if !reflect.DeepEqual(upstream.service, wantService) {
		t.Errorf("service = %v, want %v (no port in upstream mode)", upstream.service, wantService)
	}
	wantRoute := body{"name": "s", "paths": []interface{}{"/s"}, "methods": []interface{}{}, "strip_path": false, "tags": tags}
	if !reflect.DeepEqual(upstream.route, wantRoute) {
		t.Errorf("route = %v, want %v", upstream.route, wantRoute)
	}
	wantTarget := body{"target": "[fd00::1]:81", "weight": 7.0, "tags": tags}
	if !reflect.DeepEqual(upstream.targetBody, wantTarget) || upstream.upstream["slots"] != 64.0 {
		t.Errorf("target = %v, upstream = %v", upstream.targetBody, upstream.upstream)
	}

	// No address: DNS mode, the service points at virtual_host:port.
	dns := planState(cfg, "", "me")
	wantService = body{"name": "s", "host": "s.service.consul", "port": 81.0, "tags": tags}
	if dns.upstreamName != "" || dns.target != "" || !reflect.DeepEqual(dns.service, wantService) {
		t.Errorf("DNS mode = %+v", dns)
	}

	// Unset weight and slots are left to Kong's defaults.
	bare := planState(&MicroserviceConfig{Name: "b", Port: 1, Hosts: []string{"h"}}, "10.0.0.1", "me")
	if _, ok := bare.targetBody["weight"]; ok {
		t.Error("weight sent although unset")
	}
	if _, ok := bare.upstream["slots"]; ok {
		t.Error("slots sent although unset")
	}
	if _, ok := bare.route["paths"]; ok {
		t.Error("empty paths sent")
	}
}

func TestResolveAddress(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		mode    Mode
		given   string
		admin   string
		want    string
		wantErr error
	}{
		{ModeAuto, "10.0.0.7", "http://127.0.0.1:8001", "10.0.0.7", nil},
		{ModeAuto, "", "http://127.0.0.1:8001", "127.0.0.1", nil},
		{ModeAuto, "", "http://[::1]:8001", "::1", nil},
		{ModeDNS, "10.0.0.7", "http://127.0.0.1:8001", "", nil},
		{ModeAuto, "", "http://:8001", "", nil}, // no address: DNS mode
		{ModeUpstream, "", "http://:8001", "", errNoAddress},
		{ModeAuto, "", "not a url", "", nil},
	}
	for _, c := range cases {
		got, err := resolveAddress(ctx, c.mode, c.given, c.admin)
		if c.admin == "http://[::1]:8001" && err == nil && got == "" {
			continue // no IPv6 loopback on this machine
		}
		if got != c.want || !errors.Is(err, c.wantErr) {
			t.Errorf("resolveAddress(%v, %q, %q) = %q, %v; want %q, %v", c.mode, c.given, c.admin, got, err, c.want, c.wantErr)
		}
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	policy := RetryPolicy{Initial: 100 * time.Millisecond, MaxBackoff: time.Second, Jitter: 0}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := policy.backoff(i + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	jittered := DefaultRetryPolicy()
	for attempt := 1; attempt < 20; attempt++ {
		if got := jittered.backoff(attempt); got < jittered.Initial || got > jittered.MaxBackoff {
			t.Errorf("backoff(%d) = %v outside [%v, %v]", attempt, got, jittered.Initial, jittered.MaxBackoff)
		}
	}
}

func TestClientTimeouts(t *testing.T) {
	if c := newAdminClient("http://x/", nil, DefaultTimeout, nil, DefaultRetryPolicy()); c.http.Timeout != DefaultTimeout || c.base != "http://x" {
		t.Errorf("nil client: timeout %v, base %q", c.http.Timeout, c.base)
	}
	own := &http.Client{Timeout: 3 * time.Second}
	if c := newAdminClient("http://x", own, DefaultTimeout, nil, DefaultRetryPolicy()); c.http != own {
		t.Error("a client with its own timeout was replaced")
	}
	zero := &http.Client{}
	if c := newAdminClient("http://x", zero, time.Second, nil, DefaultRetryPolicy()); c.http.Timeout != time.Second || zero.Timeout != 0 {
		t.Errorf("zero-timeout client: got %v, caller's now %v", c.http.Timeout, zero.Timeout)
	}
}

func TestTransientTransportErrors(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "http://x", Err: err} }
	retry := []error{
		wrap(syscall.ECONNREFUSED), wrap(syscall.ECONNRESET), wrap(io.EOF), wrap(io.ErrUnexpectedEOF),
		wrap(fmt.Errorf("read: %w", syscall.EPIPE)),
	}
	for _, err := range retry {
		if !transient(err) {
			t.Errorf("%v should be retried", err)
		}
	}
	if transient(wrap(errors.New(`net/http: invalid header field value for "X"`))) {
		t.Error("an invalid header should not be retried")
	}
	for _, status := range []int{429, 500, 502, 503, 504} {
		if !retryable(status) {
			t.Errorf("%d should be retried", status)
		}
	}
	for _, status := range []int{200, 400, 401, 404, 409, 501} {
		if retryable(status) {
			t.Errorf("%d should not be retried", status)
		}
	}
}

func TestAdoptedTagsKeepOthersAndReplaceOwners(t *testing.T) {
	row := normalize(body{"tags": []string{"ops", "managed-by:someone-else", "team-a"}})
	desired := normalize(body{"tags": []string{"managed-by:kong-bridge-selfreg"}})
	want := []string{"managed-by:kong-bridge-selfreg", "ops", "team-a"}
	if got := adoptedTags(row, desired); !reflect.DeepEqual(got, want) {
		t.Errorf("adoptedTags = %v, want %v", got, want)
	}
}
