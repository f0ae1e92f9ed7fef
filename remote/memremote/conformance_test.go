package memremote_test

import (
	"testing"

	"github.com/jonboulle/clockwork"

	"github.com/tandemsync/tandem/remote/memremote"
	"github.com/tandemsync/tandem/remote/remotetest"
)

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		m := memremote.New(clockwork.NewFakeClock(), memremote.Options{Label: t.Name()})
		return remotetest.Fixture{R: m, Other: m.Handle(), Expire: m.Compact}
	}, nil)
}

// The digest-less variant (vBoxx's shape) and a paged, history-limited feed must pass the same suite.
func TestConformanceNoHashPaged(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Fixture {
		m := memremote.New(clockwork.NewFakeClock(), memremote.Options{NoHash: true, PageSize: 2, HistoryLimit: 1000})
		return remotetest.Fixture{R: m, Other: m.Handle(), Expire: m.Compact}
	}, nil)
}
