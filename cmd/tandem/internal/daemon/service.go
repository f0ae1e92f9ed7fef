package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/kardianos/service"
)

// Program adapts a run function to kardianos/service: Start launches it and returns at once; Stop cancels it
// and waits at most StopTimeout (the service manager's patience), never calling os.Exit.
type Program struct {
	Run         func(ctx context.Context) error
	StopTimeout time.Duration // default 5 s

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

var _ service.Interface = (*Program)(nil)

// Start implements service.Interface.
func (p *Program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan struct{})
	done := p.done
	p.mu.Unlock()
	go func() { // owned: Stop waits on done
		err := p.Run(ctx)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Stop implements service.Interface.
func (p *Program) Stop(service.Service) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	t := p.StopTimeout
	if t <= 0 {
		t = 5 * time.Second
	}
	select {
	case <-done:
	case <-time.After(t):
	}
	return p.Err()
}

// Done is closed when Run has returned (nil before Start).
func (p *Program) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Err is what Run returned.
func (p *Program) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
