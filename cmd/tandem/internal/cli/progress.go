package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tandemsync/tandem/engine"
)

// progress draws a bar on stderr while a pass works, only on a terminal (a log file or a pipe gets no control
// sequences) and only once there is work (a no-change pass prints nothing). Events come from the pool's
// goroutines, hence the mutex.
type progress struct {
	enabled bool
	app     *App

	mu          sync.Mutex
	bar         *progressbar.ProgressBar
	started     int
	done        int
	total, sent int64
	inflight    map[string]int64 // bytes already counted of transfers still running
}

func newProgress(app *App, o onceOpts) *progress {
	// -v logs every file to stderr: a bar redrawn between log lines would garble both.
	return &progress{app: app, enabled: !o.verbose && !o.dryRun && app.IsTerminal(app.Stderr),
		inflight: map[string]int64{}}
}

func (p *progress) event(ev engine.Event) {
	if !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.app.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true), // MiB and MiB/s, as the description and every report say
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSpinnerType(14),
		)
	}
	if ev.Progress {
		// Mid-transfer bytes move the bar; the transfer's end adds the rest.
		if d := ev.Bytes - p.inflight[inflightKey(ev.Action)]; d > 0 {
			p.inflight[inflightKey(ev.Action)] = ev.Bytes
			p.sent += d
			_ = p.bar.Add64(d)
			p.describe()
		}
		return
	}
	n := ev.Action.Bytes()
	if ev.Done {
		// What the progress events already counted of this transfer is not counted twice.
		n -= p.inflight[inflightKey(ev.Action)]
		delete(p.inflight, inflightKey(ev.Action))
	}
	if !ev.Done {
		p.started++
		p.total += n
	} else {
		p.done++
		p.sent += n
		_ = p.bar.Add64(n)
	}
	p.describe()
}

func (p *progress) describe() {
	p.bar.Describe(fmt.Sprintf("%d/%d actions, %s of %s", p.done, p.started, humanBytes(p.sent), humanBytes(p.total)))
}

// inflightKey names a running transfer (an action is one op on one path).
func inflightKey(a engine.Action) string { return a.Op.String() + "\x00" + string(a.Path) }

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
