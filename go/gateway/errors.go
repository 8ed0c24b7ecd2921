package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is. Every error SelfRegister and Unregister return is a
// *RegistrationError wrapping one of the typed errors below, each of which
// matches one of these.
var (
	// ErrGatewayUnavailable: Kong stayed unreachable, or kept answering 5xx or
	// 429, for the whole retry budget (see UnavailableError).
	ErrGatewayUnavailable = errors.New("Kong unavailable")
	// ErrRejected: Kong answered a status that retrying cannot fix, such as a
	// 400 validation error or a 401 (see KongError).
	ErrRejected = errors.New("Kong rejected the request")
	// ErrOwnershipConflict: an entity with our name exists in Kong without our
	// owner tag (see OwnershipConflictError).
	ErrOwnershipConflict = errors.New("ownership conflict")
	// ErrInvalidConfig: the service config is missing, unreadable or invalid
	// (see ConfigError).
	ErrInvalidConfig = errors.New("invalid service config")
)

// RegistrationError is what SelfRegister and Unregister return: which
// operation failed for which service, wrapping the cause.
type RegistrationError struct {
	Op      string // "registering" or "unregistering"
	Service string
	Err     error
}

func (e *RegistrationError) Error() string {
	return fmt.Sprintf("%s %s on Kong failed: %v", e.Op, e.Service, e.Err)
}

func (e *RegistrationError) Unwrap() error { return e.Err }

// KongError is an answer from Kong that the operation cannot accept: a 4xx
// (validation, authentication, conflict) or a body that is not JSON.
type KongError struct {
	Method  string
	Path    string
	Status  int
	Message string // Kong's "message" field, or the start of the body
}

func (e *KongError) Error() string {
	return fmt.Sprintf("%s %s: Kong answered %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *KongError) Is(target error) bool { return target == ErrRejected }

// UnavailableError says Kong could not be reached, or kept answering 5xx or
// 429, until the retry budget ran out.
type UnavailableError struct {
	Method   string
	Path     string
	Attempts int
	Status   int    // the last HTTP status, 0 when the last attempt got no answer
	Message  string // Kong's message with that status
	Err      error  // the last transport error (nil when Kong answered)
}

func (e *UnavailableError) Error() string {
	reason := e.Message
	if e.Err != nil {
		reason = e.Err.Error()
	} else if e.Status != 0 {
		reason = fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s %s: Kong unavailable after %d attempt(s): %s", e.Method, e.Path, e.Attempts, reason)
}

// Is makes errors.Is(err, ErrGatewayUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrGatewayUnavailable }

// Unwrap gives the last transport error (a *url.Error, a timeout...).
func (e *UnavailableError) Unwrap() error { return e.Err }

// OwnershipConflictError: the entity exists without our owner tag, so we
// refuse to change it (WithAdopt takes it over), or it kept disappearing
// while we were creating it.
type OwnershipConflictError struct {
	Kind     string // upstream, target, service or route
	Name     string
	OwnerTag string
	Reason   string
}

func (e *OwnershipConflictError) Error() string {
	return fmt.Sprintf("%s '%s' %s", e.Kind, e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrOwnershipConflict) true.
func (e *OwnershipConflictError) Is(target error) bool { return target == ErrOwnershipConflict }

func notOwned(kind, name, tag string) *OwnershipConflictError {
	return &OwnershipConflictError{
		Kind: kind, Name: name, OwnerTag: tag,
		Reason: fmt.Sprintf("exists in Kong without the owner tag '%s'; refusing to change it (use WithAdopt to take it over)", tag),
	}
}

// ConfigError lists what is wrong with a service config, naming its source
// (a file path, or "service config") and each field.
type ConfigError struct {
	Source   string
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: invalid service config: %s", e.Source, strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
