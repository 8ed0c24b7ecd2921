package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
)

// createAttempts bounds "404, then 409 on create" cycles: an entity that
// keeps vanishing while we create it is reported, not chased forever.
const createAttempts = 3

// Action is what happened to one entity: created, updated, unchanged,
// deleted, absent or kept (with the reason in Detail).
type Action struct {
	Kind    string // upstream, target, service or route
	Name    string
	Outcome string
	Detail  string
}

func (a Action) String() string {
	if a.Detail != "" {
		return fmt.Sprintf("%s %s: %s (%s)", a.Kind, a.Name, a.Outcome, a.Detail)
	}
	return fmt.Sprintf("%s %s: %s", a.Kind, a.Name, a.Outcome)
}

// Result lists the actions one registration or unregistration took.
type Result struct {
	Actions []Action
}

// Writes counts the actions that changed Kong.
func (r Result) Writes() int {
	n := 0
	for _, a := range r.Actions {
		switch a.Outcome {
		case "created", "updated", "deleted":
			n++
		}
	}
	return n
}

func (r *Result) add(kind, name, outcome, detail string) {
	r.Actions = append(r.Actions, Action{Kind: kind, Name: name, Outcome: outcome, Detail: detail})
}

// session runs one operation's calls under one retry budget. The logic
// mirrors the Python library's flows call for call (bridge/selfreg/flows.py).
type session struct {
	ctx      context.Context
	deadline time.Time
	kong     *adminClient
	owner    string
	adopt    bool
	result   Result
}

func (s *session) call(method, path string, body interface{}) (reply, error) {
	return s.kong.call(s.ctx, s.deadline, method, path, nil, body)
}

func (s *session) owned(row body) bool {
	return hasTag(row, OwnerTag(s.owner))
}

func hasTag(row body, tag string) bool {
	tags, _ := row["tags"].([]interface{})
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

// adoptedTags keeps the entity's tags that are not owner tags, plus ours.
func adoptedTags(row, desired body) []string {
	set := map[string]bool{}
	tags, _ := row["tags"].([]interface{})
	for _, t := range tags {
		if s, ok := t.(string); ok && !strings.HasPrefix(s, OwnerTagPrefix) {
			set[s] = true
		}
	}
	want, _ := desired["tags"].([]interface{})
	for _, t := range want {
		set[t.(string)] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ensure makes the entity at path match desired, creating it with a POST of
// createBody to createPath when it is missing. A 409 on create means another
// instance created it first: read theirs and patch only what differs.
func (s *session) ensure(kind, name, path, createPath string, createBody, desired body) (body, error) {
	for attempt := 0; attempt < createAttempts; attempt++ {
		got, err := s.call("GET", path, nil)
		if err != nil {
			return nil, err
		}
		if got.status == 404 {
			created, err := s.call("POST", createPath, createBody)
			if err != nil {
				return nil, err
			}
			if created.status == 200 || created.status == 201 {
				s.result.add(kind, name, "created", "")
				return created.object(), nil
			}
			if created.status != 409 {
				return nil, require("POST", createPath, created)
			}
			continue
		}
		if err := require("GET", path, got, 200); err != nil {
			return nil, err
		}
		row := got.object()
		patch := changedFields(desired, row)
		if !s.owned(row) {
			if !s.adopt {
				return nil, notOwned(kind, name, OwnerTag(s.owner))
			}
			patch["tags"] = adoptedTags(row, desired)
		}
		if len(patch) == 0 {
			s.result.add(kind, name, "unchanged", "")
			return row, nil
		}
		updated, err := s.call("PATCH", path, patch)
		if err != nil {
			return nil, err
		}
		if err := require("PATCH", path, updated, 200); err != nil {
			return nil, err
		}
		s.result.add(kind, name, "updated", strings.Join(sortedKeys(patch), ", "))
		return updated.object(), nil
	}
	return nil, &OwnershipConflictError{Kind: kind, Name: name, OwnerTag: OwnerTag(s.owner), Reason: "kept disappearing while being created; giving up"}
}

// register: upstream, then the target, then the service, then its route.
func (s *session) register(state desiredState) error {
	if state.upstreamName != "" {
		upPath := "/upstreams/" + segment(state.upstreamName)
		if _, err := s.ensure("upstream", state.upstreamName, upPath, "/upstreams", state.upstream, state.upstream); err != nil {
			return err
		}
		desired := body{}
		for k, v := range state.targetBody {
			if k != "target" {
				desired[k] = v
			}
		}
		name := state.upstreamName + "/" + state.target
		if _, err := s.ensure("target", name, upPath+"/targets/"+segment(state.target), upPath+"/targets", state.targetBody, desired); err != nil {
			return err
		}
	}
	service, err := s.ensure("service", state.serviceName, "/services/"+segment(state.serviceName), "/services", state.service, state.service)
	if err != nil {
		return err
	}
	id, _ := service["id"].(string)
	route := body{"service": map[string]interface{}{"id": id}}
	for k, v := range state.route {
		route[k] = v
	}
	_, err = s.ensure("route", state.routeName, "/routes/"+segment(state.routeName), "/services/"+id+"/routes", route, route)
	return err
}

func (s *session) delete(kind, name, path string) error {
	got, err := s.call("DELETE", path, nil)
	if err != nil {
		return err
	}
	if err := require("DELETE", path, got, 204, 404); err != nil {
		return err
	}
	outcome := "deleted"
	if got.status == 404 {
		outcome = "absent"
	}
	s.result.add(kind, name, outcome, "")
	return nil
}

// paginate reads every entity of a collection, following Kong's offset.
func (s *session) paginate(path string) ([]body, error) {
	var rows []body
	query := url.Values{"size": {"1000"}}
	for {
		got, err := s.kong.call(s.ctx, s.deadline, "GET", path, query, nil)
		if err != nil {
			return nil, err
		}
		if err := require("GET", path, got, 200); err != nil {
			return nil, err
		}
		page := got.object()
		data, _ := page["data"].([]interface{})
		for _, item := range data {
			if row, ok := item.(map[string]interface{}); ok {
				rows = append(rows, row)
			}
		}
		offset, _ := page["offset"].(string)
		if offset == "" {
			return rows, nil
		}
		query = url.Values{"size": {"1000"}, "offset": {offset}}
	}
}

// unregister removes this instance's target, then the route, service and
// upstream when removeService is set or no target is left.
func (s *session) unregister(state desiredState, removeService bool) error {
	if state.upstreamName != "" {
		upPath := "/upstreams/" + segment(state.upstreamName)
		path := upPath + "/targets/" + segment(state.target)
		got, err := s.call("GET", path, nil)
		if err != nil {
			return err
		}
		if got.status == 404 {
			s.result.add("target", state.target, "absent", "")
		} else if err := require("GET", path, got, 200); err != nil {
			return err
		} else if !s.owned(got.object()) {
			s.result.add("target", state.target, "kept", "not ours")
		} else if err := s.delete("target", state.target, path); err != nil {
			return err
		}
		if !removeService {
			upstream, err := s.call("GET", upPath, nil)
			if err != nil {
				return err
			}
			if upstream.status == 404 {
				return nil
			}
			remaining, err := s.paginate(upPath + "/targets")
			if err != nil {
				return err
			}
			removeService = len(remaining) == 0
		}
	}
	if removeService {
		return s.removeService(state)
	}
	return nil
}

// removeService deletes the routes, then the service, then the upstream,
// each only if it carries our tag (and the upstream only if no target is left).
func (s *session) removeService(state desiredState) error {
	name := state.serviceName
	path := "/services/" + segment(name)
	got, err := s.call("GET", path, nil)
	if err != nil {
		return err
	}
	if got.status == 200 && !s.owned(got.object()) {
		s.result.add("service", name, "kept", "not ours")
		return nil
	}
	if got.status == 200 {
		id, _ := got.object()["id"].(string)
		routes, err := s.paginate("/services/" + id + "/routes")
		if err != nil {
			return err
		}
		foreign := 0
		for _, route := range routes {
			if !s.owned(route) {
				foreign++
				continue
			}
			routeID, _ := route["id"].(string)
			routeName, _ := route["name"].(string)
			if routeName == "" {
				routeName = routeID
			}
			if err := s.delete("route", routeName, "/routes/"+routeID); err != nil {
				return err
			}
		}
		if foreign > 0 {
			s.result.add("service", name, "kept", fmt.Sprintf("%d route(s) not ours remain", foreign))
			return nil
		}
		if err := s.delete("service", name, "/services/"+id); err != nil {
			return err
		}
	} else if err := require("GET", path, got, 404); err != nil {
		return err
	}
	if state.upstreamName == "" {
		return nil
	}
	upPath := "/upstreams/" + segment(state.upstreamName)
	upstream, err := s.call("GET", upPath, nil)
	if err != nil {
		return err
	}
	if upstream.status == 404 {
		return nil
	}
	if err := require("GET", upPath, upstream, 200); err != nil {
		return err
	}
	if !s.owned(upstream.object()) {
		s.result.add("upstream", state.upstreamName, "kept", "not ours")
		return nil
	}
	// Another instance may have registered meanwhile: its target would go with the upstream.
	remaining, err := s.paginate(upPath + "/targets")
	if err != nil {
		return err
	}
	if len(remaining) > 0 {
		s.result.add("upstream", state.upstreamName, "kept", fmt.Sprintf("%d target(s) registered since", len(remaining)))
		return nil
	}
	return s.delete("upstream", state.upstreamName, upPath)
}

// setFields are Kong's set-typed fields: order carries no meaning.
var setFields = map[string]bool{"tags": true, "methods": true, "protocols": true, "snis": true}

// changedFields are the fields of desired that Kong's actual entity does not
// already have (Kong fills in defaults, so only fields we set are compared).
func changedFields(desired, actual body) body {
	patch := body{}
	for key, want := range desired {
		if !sameValue(key, want, actual[key]) {
			patch[key] = want
		}
	}
	return patch
}

func sameValue(key string, want, have interface{}) bool {
	wantMap, wantIsMap := want.(map[string]interface{})
	haveMap, haveIsMap := have.(map[string]interface{})
	if wantIsMap && haveIsMap {
		return len(changedFields(wantMap, haveMap)) == 0
	}
	wantList, wantIsList := want.([]interface{})
	haveList, haveIsList := have.([]interface{})
	if setFields[key] && wantIsList && haveIsList {
		return reflect.DeepEqual(asSet(wantList), asSet(haveList))
	}
	if wantIsList && len(wantList) == 0 && have == nil {
		return true // Kong renders an empty set as null
	}
	return reflect.DeepEqual(want, have)
}

func asSet(values []interface{}) map[string]bool {
	set := map[string]bool{}
	for _, v := range values {
		raw, _ := json.Marshal(v)
		set[string(raw)] = true
	}
	return set
}

func sortedKeys(m body) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
