// Package gateway registers a Go microservice on Kong Gateway 3.x at start-up
// and removes it at shutdown: the Microkubes "gateway" package, rebuilt on
// Kong's services, routes, upstreams and targets.
//
//	registration := gateway.NewKongGateway(gatewayAdminURL, &http.Client{}, serviceConfig.Service)
//	if err := registration.SelfRegister(); err != nil {
//		panic(err)
//	}
//	defer registration.Unregister()
//
// It writes exactly what the project's Python library (bridge.selfreg) writes,
// so Go and Python instances of one service share one upstream:
//
//   - upstream named virtual_host (default "<name>.service.consul"), with slots;
//   - one target per instance, "<address>:<port>", with weight;
//   - service named name, whose host is the upstream;
//   - route named name, with paths and hosts;
//
// every entity tagged "managed-by:kong-bridge-selfreg". When this instance's
// address cannot be found, it falls back to DNS mode: no upstream, and the
// service's host:port is virtual_host:port, resolved by Kong through Consul DNS.
//
// Registration is race-safe (entities are created with POST, a 409 means
// another instance won the race: read theirs and patch only what differs) and
// idempotent (a repeated registration writes nothing). Unregister removes this
// instance's target, and the route, service and upstream only when no target
// is left. Entities without the owner tag are never changed: a name clash is
// an error that errors.Is(err, ErrOwnershipConflict) recognises.
//
// Every call has a timeout (a client without one gets DefaultTimeout);
// connection errors, 5xx and 429 are retried with exponential backoff within a
// retry budget (DefaultRetryBudget per operation). Errors are typed: see
// KongError, UnavailableError, OwnershipConflictError and ConfigError.
package gateway
