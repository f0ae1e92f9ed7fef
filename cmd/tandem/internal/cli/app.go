// Package cli holds tandem's commands. Each command is a constructor that takes the App (its dependencies) and
// returns a *cobra.Command whose RunE returns errors; main turns them into exit codes with ExitCode.
package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/tandemsync/tandem/remote"
)

// Version is the release, set at link time: -ldflags "-X github.com/tandemsync/tandem/cmd/tandem/internal/cli.Version=v1.2.3".
var Version = "dev"

// App is what every command needs from the outside world. main builds the real one; tests build their own.
type App struct {
	Registry *remote.Registry
	// NewLogger returns the logger for one command run; verbose selects Debug instead of Warn.
	NewLogger func(w io.Writer, verbose bool) *zap.Logger
	Stdin     io.Reader // passwords for `tandem login vboxx --password-stdin`
	Stdout    io.Writer
	Stderr    io.Writer
	// Now is the wall clock: cmd is the only place the real clock is read (conflict names, trash names).
	Now func() time.Time
	// Hostname names this machine in conflict copies.
	Hostname func() (string, error)
	// IsTerminal decides whether a progress bar is drawn on w.
	IsTerminal func(w io.Writer) bool
}

// NewApp wires the production dependencies around reg.
func NewApp(reg *remote.Registry) *App {
	return &App{
		Registry:   reg,
		NewLogger:  ConsoleLogger,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Now:        time.Now,
		Hostname:   os.Hostname,
		IsTerminal: isTerminal,
	}
}

func isTerminal(w io.Writer) bool {
	if c, ok := w.(*countWriter); ok {
		w = c.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ConsoleLogger logs to w in zap's console format: warnings and errors only, unless verbose.
func ConsoleLogger(w io.Writer, verbose bool) *zap.Logger {
	lvl := zapcore.WarnLevel
	if verbose {
		lvl = zapcore.DebugLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core)
}

// NewRootCmd builds the `tandem` command tree.
func NewRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "tandem",
		Short: "tandem keeps a local folder and a remote folder identical, in both directions",
		Long: `tandem keeps a local folder and a folder elsewhere (another directory, "dir:/path", or a folder in a
pCloud, Verizon Personal Cloud or vBoxxCloud account) identical in both directions. Changes on either side
are carried over; when both sides changed the same file, both versions are kept.

Start with "tandem demo", then "tandem once <local-dir> dir:<other-dir>".`,
		// Any positional argument here is a mistyped command: a usage error, not help with exit 0.
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return c.Help()
		},
		SilenceErrors: true, // main prints the error once, with the exit code it implies
		SilenceUsage:  true,
	}
	root.SetOut(app.Stdout)
	root.SetErr(app.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newOnceCmd(app), newVersionCmd(app), newDemoCmd(app), newRunCmd(app), newStatusCmd(app), newControlCmd(app, "pause"), newControlCmd(app, "resume"), newControlCmd(app, "rescan"), newConflictsCmd(app), newAddCmd(app), newConfigCmd(app), newServiceCmd(app))
	root.AddCommand(newEmulateCmd(app), newLoginCmd(app))
	root.AddCommand(newHistoryCmd(app), newLogoutCmd(app), newGenDocsCmd())
	return root
}

// Execute runs the command line args (without the program name) and returns the exit code, after printing the
// error to app.Stderr.
//
// With --json, stdout carries one JSON document for every exit (README "JSON output"): a command that failed
// before it could print its own (a bad flag, a wrong argument count) gets a failure document here.
func Execute(ctx context.Context, app *App, args []string) int {
	out := &countWriter{w: app.Stdout}
	a := *app
	a.Stdout = out
	root := NewRootCmd(&a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	io.WriteString(app.Stderr, "tandem: "+err.Error()+"\n")
	if IsUsage(err) {
		io.WriteString(app.Stderr, "Run \"tandem --help\" or \"tandem <command> --help\" for usage.\n")
	}
	if wantsJSON(args) && out.n == 0 {
		if c, _, ferr := root.Find(args); ferr == nil && c.Name() == "once" {
			res := &result{} // the schema of a pass, every list empty
			res.finish(err, 0)
			_ = jsonPrinter{}.print(app.Stdout, res)
		} else {
			enc := json.NewEncoder(app.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(failureDoc{OK: false, ExitCode: ExitCode(err), Error: err.Error()})
		}
	}
	return ExitCode(err)
}

// failureDoc is the JSON answer of a command other than once that failed before printing its own document.
type failureDoc struct {
	OK       bool   `json:"ok"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
}

// wantsJSON reports whether the command line asked for JSON, read without cobra: the flag parser may be what
// failed. Arguments after "--" are not flags.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if v, ok := strings.CutPrefix(a, "--json="); ok {
			if b, err := strconv.ParseBool(v); err == nil && b {
				return true
			}
		}
		if a == "--json" {
			return true
		}
	}
	return false
}

// countWriter counts what a command wrote, so Execute knows whether a JSON document was already printed.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
