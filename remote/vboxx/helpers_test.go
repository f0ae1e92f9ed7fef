package vboxx

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/internal/tokenstore"
	"github.com/tandemsync/tandem/remote/vboxx/emulator"
)

// env is an emulator with a logged-in token file, and clients opened on it the way the CLI opens them.
type env struct {
	t     testing.TB
	emu   *emulator.Running
	state string
}

func newEnv(t testing.TB, o emulator.Options) *env {
	t.Helper()
	emu := emulator.Start(t, o)
	e := &env{t: t, emu: emu, state: t.TempDir()}
	err := Login(t.Context(), quiet(t), LoginOptions{Endpoint: emu.URL, Username: emu.User,
		Password: remote.Secret(emu.Password), CAFile: emu.CAFile, StateDir: e.state})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return e
}

func quiet(t testing.TB) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

// open opens "vboxx:/<root>/<dir>" through Open, with the token file.
func (e *env) open(dir string) *Client {
	e.t.Helper()
	r, err := Open(e.t.Context(), quiet(e.t), "/"+e.emu.RootName+dir, remote.OpenOptions{CAFile: e.emu.CAFile,
		StateDir: e.state})
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.t.Cleanup(func() { _ = r.Close() })
	return r.(*Client)
}

// client builds a Client with tuning (budget, overlap) through New, sharing the env's token file.
func (e *env) client(dir string, tune func(*Config)) *Client {
	e.t.Helper()
	var tf tokenFile
	if err := tokenstore.Load(tokenstore.File(e.state, "vboxx", ""), &tf); err != nil {
		e.t.Fatal(err)
	}
	cfg := Config{Endpoint: e.emu.URL, CAFile: e.emu.CAFile, Token: tf.token(), BaseDelay: time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(e.t.Context(), quiet(e.t), "/"+e.emu.RootName+dir, cfg)
	if err != nil {
		e.t.Fatalf("new: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}
