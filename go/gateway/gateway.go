package gateway

import (
	"context"
	"net/http"
	"os"
	"sync"
	"time"
)

// DefaultAdminURL is Kong's Admin API when neither the caller nor
// $API_GATEWAY_URL gives one.
const DefaultAdminURL = "http://localhost:8001"

// Registration is the Microkubes interface: register at start-up, unregister
// at shutdown.
type Registration interface {
	SelfRegister() error
	Unregister() error
}

// ContextRegistration adds context-aware variants; the value NewKongGateway
// returns implements it.
type ContextRegistration interface {
	Registration
	SelfRegisterContext(ctx context.Context) error
	UnregisterContext(ctx context.Context) error
}

var _ ContextRegistration = (*KongGateway)(nil)

// Option tunes a KongGateway.
type Option func(*options)

type options struct {
	owner         string
	adopt         bool
	mode          Mode
	address       string
	timeout       time.Duration
	retry         RetryPolicy
	headers       http.Header
	removeService bool
}

// WithOwner sets the owner id of the "managed-by:<owner>" tag (default
// DefaultOwner, the same as the Python library's).
func WithOwner(owner string) Option { return func(o *options) { o.owner = owner } }

// WithAdopt takes over same-name entities that lack our owner tag instead of
// failing with ErrOwnershipConflict (their other tags are kept).
func WithAdopt() Option { return func(o *options) { o.adopt = true } }

// WithMode chooses upstream or DNS mode (default ModeAuto).
func WithMode(mode Mode) Option { return func(o *options) { o.mode = mode } }

// WithAddress sets this instance's address instead of detecting it.
func WithAddress(address string) Option { return func(o *options) { o.address = address } }

// WithTimeout bounds each HTTP call when the http.Client has no Timeout
// (default DefaultTimeout).
func WithTimeout(timeout time.Duration) Option { return func(o *options) { o.timeout = timeout } }

// WithRetryBudget bounds the total time one operation keeps retrying
// connection errors, 5xx and 429 (default DefaultRetryBudget).
func WithRetryBudget(budget time.Duration) Option {
	return func(o *options) { o.retry.Budget = budget }
}

// WithRetryPolicy replaces the whole backoff policy.
func WithRetryPolicy(policy RetryPolicy) Option { return func(o *options) { o.retry = policy } }

// WithHeader adds a header to every Admin API call (e.g. Kong-Admin-Token).
func WithHeader(name, value string) Option {
	return func(o *options) { o.headers.Add(name, value) }
}

// WithRemoveServiceOnUnregister makes Unregister also remove the route,
// service and upstream even when other instances' targets remain.
func WithRemoveServiceOnUnregister() Option { return func(o *options) { o.removeService = true } }

// KongGateway registers one service instance on Kong 3.x. It is safe for
// concurrent use; operations on one KongGateway run one at a time.
type KongGateway struct {
	adminURL string
	config   *MicroserviceConfig
	opts     options
	kong     *adminClient

	mu         sync.Mutex
	registered *desiredState // what SelfRegister wrote, for Unregister
	last       Result
}

// NewKongGateway is the Microkubes constructor. adminURL "" means
// $API_GATEWAY_URL, else DefaultAdminURL; a nil client or one without a
// Timeout gets DefaultTimeout (the caller's client is not modified). The
// returned value is a *KongGateway.
func NewKongGateway(adminURL string, client *http.Client, cfg *MicroserviceConfig, opts ...Option) Registration {
	return New(adminURL, client, cfg, opts...)
}

// New is NewKongGateway returning the concrete type, for the context-aware
// methods and Result.
func New(adminURL string, client *http.Client, cfg *MicroserviceConfig, opts ...Option) *KongGateway {
	o := options{owner: DefaultOwner, timeout: DefaultTimeout, retry: DefaultRetryPolicy(), headers: http.Header{}}
	for _, opt := range opts {
		opt(&o)
	}
	if adminURL == "" {
		adminURL = os.Getenv("API_GATEWAY_URL")
	}
	if adminURL == "" {
		adminURL = DefaultAdminURL
	}
	var copied *MicroserviceConfig
	if cfg != nil {
		c := *cfg
		copied = &c
	}
	return &KongGateway{
		adminURL: adminURL,
		config:   copied,
		opts:     o,
		kong:     newAdminClient(adminURL, client, o.timeout, o.headers, o.retry),
	}
}

// AdminURL is the Admin API this gateway writes to.
func (g *KongGateway) AdminURL() string { return g.adminURL }

// SelfRegister creates or updates this instance's upstream, target, service
// and route; it fails when Kong is unreachable for the whole retry budget.
func (g *KongGateway) SelfRegister() error { return g.SelfRegisterContext(context.Background()) }

// Unregister removes this instance's target, and the route, service and
// upstream when no target is left. Unregistering twice is not an error.
func (g *KongGateway) Unregister() error { return g.UnregisterContext(context.Background()) }

// SelfRegisterContext is SelfRegister, cancelled with ctx.
func (g *KongGateway) SelfRegisterContext(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	state, err := g.plan(ctx)
	if err != nil {
		return g.fail("registering", err)
	}
	s := g.session(ctx)
	err = s.register(state)
	g.last = s.result
	if err != nil {
		return g.fail("registering", err)
	}
	g.registered = &state
	return nil
}

// UnregisterContext is Unregister, cancelled with ctx. Without a previous
// SelfRegister on this value it unregisters the instance the config and the
// detected address describe (e.g. one a previous process registered).
func (g *KongGateway) UnregisterContext(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var state desiredState
	if g.registered != nil {
		state = *g.registered
	} else {
		planned, err := g.plan(ctx)
		if err != nil {
			return g.fail("unregistering", err)
		}
		state = planned
	}
	s := g.session(ctx)
	err := s.unregister(state, g.opts.removeService)
	g.last = s.result
	if err != nil {
		return g.fail("unregistering", err)
	}
	g.registered = nil
	return nil
}

// Result is what the last SelfRegister or Unregister did, entity by entity
// (partial when it failed).
func (g *KongGateway) Result() Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Result{Actions: append([]Action(nil), g.last.Actions...)}
}

func (g *KongGateway) plan(ctx context.Context) (desiredState, error) {
	if err := g.config.Validate("service config"); err != nil {
		return desiredState{}, err
	}
	given := g.opts.address
	if given == "" {
		given = g.config.Address
	}
	address, err := resolveAddress(ctx, g.opts.mode, given, g.adminURL)
	if err != nil {
		return desiredState{}, err
	}
	return planState(g.config, address, g.opts.owner), nil
}

func (g *KongGateway) session(ctx context.Context) *session {
	return &session{
		ctx:      ctx,
		deadline: time.Now().Add(g.opts.retry.Budget),
		kong:     g.kong,
		owner:    g.opts.owner,
		adopt:    g.opts.adopt,
	}
}

func (g *KongGateway) fail(op string, err error) error {
	name := "<unnamed service>"
	if g.config != nil && g.config.Name != "" {
		name = g.config.Name
	}
	return &RegistrationError{Op: op, Service: name, Err: err}
}
