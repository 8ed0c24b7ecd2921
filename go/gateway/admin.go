package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

const (
	// DefaultTimeout bounds each HTTP call when the caller's http.Client has
	// no Timeout of its own (the Microkubes example passes &http.Client{}).
	DefaultTimeout = 10 * time.Second
	// DefaultRetryBudget bounds the retries of one SelfRegister or Unregister.
	DefaultRetryBudget = 30 * time.Second
	maxBodyBytes       = 16 << 20
)

// RetryPolicy is exponential backoff with jitter, bounded by a total time
// per operation: the same policy as the Python library.
type RetryPolicy struct {
	Budget     time.Duration // total time to keep retrying one operation
	Initial    time.Duration // first backoff
	MaxBackoff time.Duration // backoff cap
	Jitter     time.Duration // up to this much random time added to each backoff
}

// DefaultRetryPolicy: 30 s in all, 0.1 s doubling up to 5 s, 0.25 s jitter.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Budget: DefaultRetryBudget, Initial: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, Jitter: 250 * time.Millisecond}
}

func (p RetryPolicy) backoff(attempt int) time.Duration {
	wait := p.Initial
	for i := 1; i < attempt && wait < p.MaxBackoff; i++ {
		wait *= 2
	}
	if p.Jitter > 0 {
		wait += time.Duration(rand.Int63n(int64(p.Jitter)))
	}
	if wait > p.MaxBackoff {
		wait = p.MaxBackoff
	}
	return wait
}

// reply is one Admin API answer; body is the decoded JSON (nil when empty).
type reply struct {
	status int
	body   interface{}
	raw    []byte
}

func (r reply) object() map[string]interface{} {
	m, _ := r.body.(map[string]interface{})
	return m
}

// message is Kong's error message, or the start of the body.
func (r reply) message() string {
	if msg, ok := r.object()["message"].(string); ok {
		return msg
	}
	text := string(r.raw)
	if len(text) > 200 {
		text = text[:200]
	}
	return text
}

// retryable statuses: the ones a later attempt may not get.
func retryable(status int) bool {
	switch status {
	case 429, 500, 502, 503, 504:
		return true
	}
	return false
}

// transient tells the transport errors a later attempt may not get (refused
// or reset connections, timeouts, a connection closed mid-answer) from those
// it would get again (an invalid header, a TLS certificate Kong's host does
// not match).
func transient(err error) bool {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // *url.Error is a net.Error itself, whatever its cause
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// adminClient speaks Kong's Admin API: JSON in and out, retries, typed errors.
type adminClient struct {
	base    string
	http    *http.Client
	headers http.Header
	retry   RetryPolicy
}

func newAdminClient(adminURL string, client *http.Client, timeout time.Duration, headers http.Header, retry RetryPolicy) *adminClient {
	if client == nil {
		client = &http.Client{}
	}
	if client.Timeout == 0 {
		// A copy, so the caller's client is left as it was; it shares the Transport.
		copied := *client
		copied.Timeout = timeout
		client = &copied
	}
	return &adminClient{base: strings.TrimRight(adminURL, "/"), http: client, headers: headers, retry: retry}
}

// call sends one request, retrying connection errors, 5xx and 429 until
// deadline; ctx cancels it at any point.
func (c *adminClient) call(ctx context.Context, deadline time.Time, method, path string, query url.Values, body interface{}) (reply, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return reply{}, fmt.Errorf("%s %s: encoding the body: %w", method, path, err)
		}
	}
	for attempt := 1; ; attempt++ {
		r, err := c.send(ctx, method, path, query, payload)
		if err == nil && !retryable(r.status) {
			return c.decode(method, path, r)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return reply{}, fmt.Errorf("%s %s: %w", method, path, ctxErr)
		}
		if err != nil && !transient(err) {
			return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			failure := &UnavailableError{Method: method, Path: path, Attempts: attempt, Err: err}
			if err == nil {
				failure.Status, failure.Message = r.status, r.message()
			}
			return reply{}, failure
		}
		wait := c.retry.backoff(attempt)
		if wait > remaining {
			wait = remaining
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return reply{}, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		case <-timer.C:
		}
	}
}

func (c *adminClient) send(ctx context.Context, method, path string, query url.Values, payload []byte) (reply, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var reader io.Reader
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return reply{}, err
	}
	for name, values := range c.headers {
		req.Header[name] = values
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &r.body) // a non-JSON body is judged in decode
	}
	return r, nil
}

func (c *adminClient) decode(method, path string, r reply) (reply, error) {
	if len(bytes.TrimSpace(r.raw)) > 0 && r.body == nil && !bytes.Equal(bytes.TrimSpace(r.raw), []byte("null")) {
		return reply{}, &KongError{Method: method, Path: path, Status: r.status, Message: "not a JSON body: " + r.message()}
	}
	return r, nil
}

// require returns a *KongError unless the reply's status is one of accept.
func require(method, path string, r reply, accept ...int) error {
	for _, status := range accept {
		if r.status == status {
			return nil
		}
	}
	return &KongError{Method: method, Path: path, Status: r.status, Message: r.message()}
}

// segment quotes a name as one URL path segment, as Python's quote(safe="").
func segment(value string) string {
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		ch := value[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.IndexByte("_.-~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
