package emukit

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Hook is a provider-specific fault action (e.g. "expireToken", "compactHistory"). It decides the whole
// response: typically it changes the emulator's state and then calls next.
type Hook func(w http.ResponseWriter, r *http.Request, a Action, next http.Handler)

// Options configures a Kit. The zero value is usable.
type Options struct {
	Logger *zap.Logger
	Clock  clockwork.Clock // times in the log, Retry-After dates, delays; default: real clock
	// Op names a request for matching and logging (e.g. the pCloud method). Default: the URL path without the
	// leading slash.
	Op func(*http.Request) string
	// LogSize bounds the request log (default 10,000 entries; the oldest are dropped).
	LogSize int
}

// Kit holds the fault plan, the hooks and the request log of one emulator.
type Kit struct {
	lg    *zap.Logger
	clk   clockwork.Clock
	opFn  func(*http.Request) string
	log   *requestLog
	stop  chan struct{} // closed by Close: releases stalled responses
	close sync.Once

	mu     sync.Mutex
	plan   *faultPlan
	hooks  map[string]Hook
	inject Injector // nil: no /inject routes
	trash  func() ([]string, error)
}

// SetTrash installs what GET /trash on the admin endpoint answers: the sha256 (hex) of the stored content of
// every file in the provider's trash. Tests use it to find a version tandem deleted on the remote.
func (k *Kit) SetTrash(f func() ([]string, error)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.trash = f
}

// Trash runs the emulator's trash lister (nil, nil when it has none).
func (k *Kit) Trash() ([]string, error) {
	k.mu.Lock()
	f := k.trash
	k.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	return f()
}

// New returns a Kit with an empty fault plan.
func New(o Options) *Kit {
	k := &Kit{lg: o.Logger, clk: o.Clock, opFn: o.Op, log: newRequestLog(o.LogSize), stop: make(chan struct{}),
		hooks: map[string]Hook{}}
	if k.lg == nil {
		k.lg = zap.NewNop()
	}
	if k.clk == nil {
		k.clk = clockwork.NewRealClock()
	}
	if k.opFn == nil {
		k.opFn = func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/") }
	}
	k.plan, _ = compilePlan(Plan{}, k.knownLocked)
	return k
}

// Clock is the kit's clock, shared with the provider so that reported times and fault timing agree.
func (k *Kit) Clock() clockwork.Clock { return k.clk }

// Close releases responses held by stallAfter. The kit stays usable for logging.
func (k *Kit) Close() { k.close.Do(func() { close(k.stop) }) }

// RegisterHook adds a named provider action. Registering a name twice replaces the hook.
func (k *Kit) RegisterHook(name string, h Hook) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hooks[name] = h
}

func (k *Kit) knownLocked(name string) bool { return builtinActions[name] || k.hooks[name] != nil }

// SetPlan replaces the fault plan (counters start from zero).
func (k *Kit) SetPlan(p Plan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	fp, err := compilePlan(p, k.knownLocked)
	if err != nil {
		return err
	}
	k.plan = fp
	return nil
}

// SetRules replaces the plan with these rules and seed 0.
func (k *Kit) SetRules(rules ...Rule) error { return k.SetPlan(Plan{Rules: rules}) }

// AddRules appends rules to the live plan, keeping the counters of the existing ones.
func (k *Kit) AddRules(rules ...Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	add, err := compilePlan(Plan{Rules: rules}, k.knownLocked)
	if err != nil {
		return err
	}
	k.plan.rules = append(k.plan.rules, add.rules...)
	return nil
}

// ClearFaults drops every rule.
func (k *Kit) ClearFaults() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.plan.rules = nil
}

// Faults reports the live rules with their counters.
func (k *Kit) Faults() []RuleStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.plan.status()
}

// LoadPlanFile reads a YAML or JSON plan file (`--faults plan.yaml`) and makes it the live plan.
func (k *Kit) LoadPlanFile(path string) error {
	data, err := readFile(path)
	if err != nil {
		return err
	}
	p, err := ParsePlan(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := k.SetPlan(p); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Log returns the request log, oldest first.
func (k *Kit) Log() []Entry { return k.log.snapshot() }

// ResetLog empties the request log.
func (k *Kit) ResetLog() { k.log.reset() }

// Wrap returns h behind the fault plan and the request log.
func (k *Kit) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := k.clk.Now()
		gen := k.log.begin()
		op := k.opFn(r)
		body := &countingReader{r: r.Body}
		r.Body = body
		sw := &statusWriter{ResponseWriter: w}
		fault := ""
		// The entry is added once: when the handler returns (before the server sends what it buffered), or
		// earlier, just before a fault cuts or resets the connection, so the client can never see the end of
		// a request that is not in the log yet.
		var logged sync.Once
		sw.end = func() {
			logged.Do(func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				k.log.add(Entry{Time: start, Method: r.Method, Path: r.URL.Path, Op: op, Query: SanitizeQuery(r.URL.Query()),
					Status: status, BytesIn: body.n, BytesOut: sw.n, Took: k.clk.Since(start), Fault: fault}, gen)
			})
		}

		k.mu.Lock()
		rule := k.plan.pick(r, op)
		var hook Hook
		if rule != nil {
			hook = k.hooks[rule.Action.Do]
		}
		k.mu.Unlock()

		if rule != nil {
			fault = rule.Action.Do
			k.lg.Debug("fault", zap.String("op", op), zap.String("action", fault), zap.String("rule", rule.Name))
			if hook != nil {
				hook(sw, r, rule.Action, h)
			} else {
				k.apply(sw, r, rule.Action, h)
			}
		} else {
			h.ServeHTTP(sw, r)
		}
		sw.end()
	})
}

// countingReader counts request body bytes for the log.
type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error {
	if c.r == nil {
		return nil
	}
	return c.r.Close()
}

// statusWriter records the status and body size. Unwrap lets http.ResponseController reach Flush and Hijack.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
	end    func() // logs the request; called before a hijacked connection is closed or reset
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.n += int64(n)
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
