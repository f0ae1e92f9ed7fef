//go:build failpoints

package failpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Env is the variable the failpoints build reads its plan from.
const Env = "TANDEM_FAILPOINTS"

// ErrInjected is what an `error` action returns.
var ErrInjected = errors.New("failpoint: injected error")

type kind int

const (
	kill kind = iota
	panicking
	sleep
	fail
	stop
	value
)

type point struct {
	kind kind
	ms   int   // sleep only
	val  int64 // value only
	nth  int64 // 0: every hit
	hits atomic.Int64
}

// The plan is parsed once per process. This is the one sanctioned piece of package-level state in the engine:
// failpoints exist only in the failpoints build, are configured by the environment of the process under test,
// and cannot be threaded through Deps without changing the default build.
var (
	once   sync.Once
	points map[string]*point
)

func load() {
	once.Do(func() {
		var err error
		points, err = parse(os.Getenv(Env))
		if err != nil {
			panic(fmt.Sprintf("%s: %v", Env, err)) // a test harness error: fail loudly
		}
	})
}

// Int returns the value planned for name with `name=value(N)`, else def. Crash tests use it to shrink sizes
// (chunk thresholds) so that tiny trees reach the code paths of large files.
func Int(name string, def int64) int64 {
	load()
	if p := points[name]; p != nil && p.kind == value {
		return p.val
	}
	return def
}

// Hit performs the action planned for name, if any, when its planned hit arrives.
func Hit(name string) error {
	load()
	p := points[name]
	if p == nil || p.kind == value {
		return nil
	}
	n := p.hits.Add(1)
	if p.nth != 0 && n != p.nth {
		return nil
	}
	switch p.kind {
	case kill:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it to land
	case panicking:
		panic("failpoint " + name)
	case sleep:
		time.Sleep(time.Duration(p.ms) * time.Millisecond)
	case stop:
		// SIGSTOP to the process itself: a test sees the stopped state, changes the world, and sends SIGCONT.
		// Unlike a sleep, nothing depends on how long the test takes. Sent to this thread (tgkill), not to the
		// process (kill): a process-directed stop is taken up by whichever thread the kernel wakes for it, and
		// on a loaded machine this thread ran on for milliseconds meanwhile, through the rest of the pass, so
		// the test changed the world only after the pass had ended (TestRootEmptiedMidPassStopsLaterRounds,
		// "exit 0, want 1"). A thread-directed stop is taken before this thread runs another instruction.
		stopSelf()
	case fail:
		return fmt.Errorf("%w at %s (hit %d)", ErrInjected, name, n)
	}
	return nil
}

// parse reads `name=action[@nth];...`. Blank terms are ignored; a name given twice is an error.
func parse(spec string) (map[string]*point, error) {
	m := map[string]*point{}
	for _, term := range strings.Split(spec, ";") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		name, act, ok := strings.Cut(term, "=")
		name, act = strings.TrimSpace(name), strings.TrimSpace(act)
		if !ok || name == "" || act == "" {
			return nil, fmt.Errorf("%q: want name=action[@nth]", term)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%q: failpoint %s given twice", term, name)
		}
		p := &point{}
		if a, nth, ok := strings.Cut(act, "@"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(nth), 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: nth must be a positive integer", term)
			}
			act, p.nth = strings.TrimSpace(a), n
		}
		switch {
		case act == "kill":
			p.kind = kill
		case act == "panic":
			p.kind = panicking
		case act == "error":
			p.kind = fail
		case act == "stop":
			p.kind = stop
		case strings.HasPrefix(act, "value(") && strings.HasSuffix(act, ")"):
			v, err := strconv.ParseInt(strings.TrimSpace(act[len("value("):len(act)-1]), 10, 64)
			if err != nil || p.nth != 0 {
				return nil, fmt.Errorf("%q: value takes an integer and no @nth", term)
			}
			p.kind, p.val = value, v
		case strings.HasPrefix(act, "sleep(") && strings.HasSuffix(act, ")"):
			ms, err := strconv.Atoi(strings.TrimSpace(act[len("sleep(") : len(act)-1]))
			if err != nil || ms < 0 {
				return nil, fmt.Errorf("%q: sleep takes milliseconds", term)
			}
			p.kind, p.ms = sleep, ms
		default:
			return nil, fmt.Errorf("%q: unknown action %q (kill, panic, sleep(ms), error, stop, value(n))", term, act)
		}
		m[name] = p
	}
	return m, nil
}
