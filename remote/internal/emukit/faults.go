package emukit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Built-in action names (Action.Do). Providers add their own with Kit.RegisterHook.
const (
	DoStatus         = "status"         // answer Status with Headers/Body; the handler does not run
	DoDelayHeaders   = "delayHeaders"   // wait Delay, then run the handler
	DoSlowBody       = "slowBody"       // run the handler, body throttled to Rate bytes/s
	DoStallAfter     = "stallAfter"     // send Bytes of body, then hang until the client gives up (or Delay)
	DoResetAfter     = "resetAfter"     // send headers and Bytes of body, then RST the connection
	DoTruncateAt     = "truncateAt"     // full Content-Length, Bytes of body, then a clean close
	DoCorruptByte    = "corruptByte"    // flip the body byte at Offset
	DoApplyThenReset = "applyThenReset" // run the handler (effect applied), drop its answer, RST: ack loss
	DoGarbage        = "garbage"        // 200 with an HTML page instead of the API's answer
)

var builtinActions = map[string]bool{
	DoStatus: true, DoDelayHeaders: true, DoSlowBody: true, DoStallAfter: true, DoResetAfter: true,
	DoTruncateAt: true, DoCorruptByte: true, DoApplyThenReset: true, DoGarbage: true,
}

// Plan is a seeded list of rules. The first rule that matches a request and decides to fire is applied; at most
// one fault hits a request.
type Plan struct {
	Seed  uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Rule selects requests and says what to do to them.
//
// Match is a regexp tried against the provider's op name (e.g. "uploadfile"), the URL path and "METHOD /path";
// any hit counts. Empty matches every request. Among matching requests, Nth fires only on the nth (1-based),
// Every on every k-th, Prob with that probability (from the plan's seeded generator); with none set every match
// fires. Times limits the number of firings (0 = unlimited).
type Rule struct {
	Name   string  `yaml:"name,omitempty" json:"name,omitempty"`
	Match  string  `yaml:"match,omitempty" json:"match,omitempty"`
	Nth    int     `yaml:"nth,omitempty" json:"nth,omitempty"`
	Every  int     `yaml:"every,omitempty" json:"every,omitempty"`
	Prob   float64 `yaml:"prob,omitempty" json:"prob,omitempty"`
	Times  int     `yaml:"times,omitempty" json:"times,omitempty"`
	Action Action  `yaml:"action" json:"action"`
}

// Action is what a firing rule does. Which fields count depends on Do.
type Action struct {
	Do          string            `yaml:"do" json:"do"`
	Status      int               `yaml:"status,omitempty" json:"status,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body        string            `yaml:"body,omitempty" json:"body,omitempty"`
	ContentType string            `yaml:"contentType,omitempty" json:"contentType,omitempty"`
	// RetryAfter sets a Retry-After header of that many seconds; RetryAfterDate sends it as an HTTP-date
	// (now + RetryAfter by the kit's clock) instead of delta-seconds. RFC 9110 allows both, clients must read both.
	RetryAfter     int           `yaml:"retryAfter,omitempty" json:"retryAfter,omitempty"`
	RetryAfterDate bool          `yaml:"retryAfterDate,omitempty" json:"retryAfterDate,omitempty"`
	Delay          time.Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	Rate           int           `yaml:"rate,omitempty" json:"rate,omitempty"`     // slowBody: bytes per second
	Bytes          int64         `yaml:"bytes,omitempty" json:"bytes,omitempty"`   // stallAfter, resetAfter, truncateAt
	Offset         int64         `yaml:"offset,omitempty" json:"offset,omitempty"` // corruptByte
	// Code and Args are for provider hooks (e.g. pCloud's result code for "result" and "expireToken").
	Code int               `yaml:"code,omitempty" json:"code,omitempty"`
	Args map[string]string `yaml:"args,omitempty" json:"args,omitempty"`
}

// ParsePlan reads a plan in YAML or JSON (JSON is read as YAML, so durations are strings like "2s" in both).
// Unknown fields are errors: a misspelt key in a fault plan would otherwise silently test nothing.
func ParsePlan(data []byte) (Plan, error) {
	var p Plan
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return Plan{}, fmt.Errorf("parse fault plan: %w", err)
	}
	for i, r := range p.Rules {
		if _, err := regexp.Compile(r.Match); err != nil {
			return Plan{}, fmt.Errorf("fault plan rules[%d].match: %w", i, err)
		}
		if r.Action.Do == "" {
			return Plan{}, fmt.Errorf("fault plan rules[%d].action.do: missing", i)
		}
	}
	return p, nil
}

// ruleState is a rule with its compiled regexp and counters.
type ruleState struct {
	Rule
	re      *regexp.Regexp
	matched int
	fired   int
}

// RuleStatus reports how often a rule matched and fired, for GET /faults and tests.
type RuleStatus struct {
	Rule    Rule `json:"rule"`
	Matched int  `json:"matched"`
	Fired   int  `json:"fired"`
}

// faultPlan is the live plan. Decisions are serialized under the kit's lock so that a seeded plan fires the same
// way for the same request order.
type faultPlan struct {
	rules []*ruleState
	rng   *rand.Rand
}

func compilePlan(p Plan, known func(string) bool) (*faultPlan, error) {
	fp := &faultPlan{rng: rand.New(rand.NewPCG(p.Seed, 0x7a6e64656d))}
	for i, r := range p.Rules {
		re, err := regexp.Compile(r.Match)
		if err != nil {
			return nil, fmt.Errorf("fault rule %d match: %w", i, err)
		}
		if !known(r.Action.Do) {
			return nil, fmt.Errorf("fault rule %d: unknown action %q", i, r.Action.Do)
		}
		fp.rules = append(fp.rules, &ruleState{Rule: r, re: re})
	}
	return fp, nil
}

// pick returns the action to apply to a request, or nil.
func (fp *faultPlan) pick(r *http.Request, op string) *Rule {
	for _, rs := range fp.rules {
		if rs.Times > 0 && rs.fired >= rs.Times {
			continue
		}
		if rs.Match != "" && !rs.re.MatchString(op) && !rs.re.MatchString(r.URL.Path) &&
			!rs.re.MatchString(r.Method+" "+r.URL.Path) {
			continue
		}
		rs.matched++
		fire := true
		if rs.Nth > 0 {
			fire = rs.matched == rs.Nth
		}
		if fire && rs.Every > 0 {
			fire = rs.matched%rs.Every == 0
		}
		if fire && rs.Prob > 0 {
			fire = fp.rng.Float64() < rs.Prob
		}
		if fire {
			rs.fired++
			rule := rs.Rule
			return &rule
		}
	}
	return nil
}

func (fp *faultPlan) status() []RuleStatus {
	out := make([]RuleStatus, 0, len(fp.rules))
	for _, rs := range fp.rules {
		out = append(out, RuleStatus{Rule: rs.Rule, Matched: rs.matched, Fired: rs.fired})
	}
	return out
}
