package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/remote/emulate"
	"github.com/tandemsync/tandem/remote/localdir"
	"github.com/tandemsync/tandem/remote/pcloud"
)

type demoOpts struct {
	dir     string
	verbose bool
}

func newDemoCmd(app *App) *cobra.Command {
	var o demoOpts
	c := &cobra.Command{
		Use:   "demo",
		Short: "Show a two-way sync between a local folder and an emulated pCloud account, including a conflict",
		Long: `Create a "laptop" folder in a workspace and a pCloud account in tandem's embedded pCloud emulator,
sync them, change both sides
(edits, a move, a delete and one file edited on both sides), sync again, and explain what happened.
The workspace is kept so you can look at it and run "tandem once" on it yourself.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return runDemo(c.Context(), app, o, c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "workspace (must be empty or not exist; default: a new temporary folder)")
	c.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "log every file (debug level) to stderr")
	return c
}

// demoCloud is the "cloud" side of the demo: the spec tandem once syncs with, and a client that makes changes
// there the way another device or the provider's web page would.
type demoCloud struct {
	spec     string
	r        remote.Remote
	about    string // one line on what the cloud side is
	layout   string // where its files live, for the closing hint
	endpoint string // --endpoint and --access-token for tandem once
	token    string
	close    func()
	now      func() time.Time // mtime of the cloud-side edits
}

// openDemoCloud starts the embedded pCloud emulator on loopback (its files in the workspace) and opens a second
// pCloud client on it for the demo's "other device" edits. Everything tandem does goes over real HTTP through the
// pCloud protocol, exactly as with the real service.
func openDemoCloud(ctx context.Context, lg *zap.Logger, ws string) (*demoCloud, error) {
	data := filepath.Join(ws, "pcloud-emulator")
	srv, err := emulate.Start(ctx, lg, "pcloud", emulate.Options{Data: data})
	if err != nil {
		return nil, err
	}
	opts := remote.OpenOptions{Endpoint: srv.Info.URL, AccessToken: remote.Secret(srv.Info.AccessToken)}
	r, err := pcloud.Open(ctx, lg, "/Sync", opts)
	if err == nil {
		if rc, ok := r.(remote.RootChecker); ok {
			err = rc.InitRoot(ctx)
		}
	}
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &demoCloud{
		spec:     "pcloud:/Sync",
		r:        r,
		about:    "the folder /Sync of a pCloud account, served by tandem's pCloud emulator at " + srv.Info.URL,
		layout:   data,
		endpoint: srv.Info.URL,
		token:    srv.Info.AccessToken,
		close:    func() { r.Close(); srv.Close() },
		now:      time.Now,
	}, nil
}

// put writes a file on the cloud side through its Remote, creating parent folders.
func (c *demoCloud) put(ctx context.Context, rel, data string) error {
	p, err := remote.ParsePath(rel)
	if err != nil {
		return err
	}
	var parents []remote.Path
	for d := p.Dir(); d != remote.Root; d = d.Dir() {
		parents = append([]remote.Path{d}, parents...)
	}
	for _, d := range parents {
		if _, err := c.r.Mkdir(ctx, d); err != nil {
			return err
		}
	}
	pre := remote.Precondition{}
	if e, err := c.r.Stat(ctx, p); err == nil {
		pre.Rev = e.Rev
	} else if errors.Is(err, remote.ErrNotFound) {
		pre.Absent = true
	} else {
		return err
	}
	_, err = c.r.Put(ctx, p, strings.NewReader(data), int64(len(data)), c.now(), pre)
	return err
}

func (c *demoCloud) move(ctx context.Context, from, to string) error {
	f, t := remote.Path(from), remote.Path(to)
	e, err := c.r.Stat(ctx, f)
	if err != nil {
		return err
	}
	_, err = c.r.Move(ctx, f, t, remote.Precondition{Rev: e.Rev})
	return err
}

func runDemo(ctx context.Context, app *App, o demoOpts, w io.Writer) error {
	ws, err := demoWorkspace(o.dir)
	if err != nil {
		return err
	}
	lg := app.NewLogger(app.Stderr, o.verbose)
	laptop := filepath.Join(ws, "laptop")
	if err := os.MkdirAll(laptop, 0o755); err != nil {
		return err
	}
	cloud, err := openDemoCloud(ctx, lg, ws)
	if err != nil {
		return fmt.Errorf("demo cloud: %w", err)
	}
	defer cloud.close()
	oo := onceOpts{stateDir: filepath.Join(ws, "state"), maxDelete: 50, conflict: "keep-both", verbose: o.verbose,
		endpoint: cloud.endpoint, accessToken: cloud.token}
	ew := &errWriter{w: w}
	say := ew.printf

	say("tandem demo\n===========\n\nWorkspace: %s\n  laptop/  a local folder\n  cloud     %s\n\n", ws, cloud.about)

	// Step 1: each side starts with its own files.
	for rel, data := range map[string]string{
		"notes/todo.txt":   "- buy milk\n- call Ana\n",
		"report.txt":       "Quarterly report, draft 1\n",
		"old-draft.txt":    "an old draft nobody needs\n",
		"photos/cat.jpg":   strings.Repeat("\xff\xd8 not really a cat ", 2000),
		"photos/beach.jpg": strings.Repeat("\xff\xd8 not really a beach ", 3000),
	} {
		if err := writeFile(filepath.Join(laptop, rel), data); err != nil {
			return err
		}
	}
	for rel, data := range map[string]string{
		"music/song.mp3":  strings.Repeat("ID3 la la la ", 5000),
		"shared/plan.md":  "# Plan\n1. sync\n2. relax\n",
		"notes/ideas.txt": "a sync tool that never loses a file\n",
	} {
		if err := cloud.put(ctx, rel, data); err != nil {
			return fmt.Errorf("demo cloud: %w", err)
		}
	}
	say("Step 1. The laptop has notes, a report, a draft and photos; the cloud has music, a plan and ideas.\n")
	say("$ tandem once %s %s\n", laptop, cloud.spec)
	if err := demoPass(ctx, app, oo, laptop, cloud.spec, ew); err != nil {
		return err
	}

	// Step 2: both sides change, one file on both.
	steps := []struct {
		what string
		do   func() error
	}{
		{"laptop: edit report.txt", func() error {
			return writeFile(filepath.Join(laptop, "report.txt"), "Quarterly report, final version\n")
		}},
		{"laptop: rename photos/cat.jpg to photos/cat-on-sofa.jpg", func() error {
			return os.Rename(filepath.Join(laptop, "photos/cat.jpg"), filepath.Join(laptop, "photos/cat-on-sofa.jpg"))
		}},
		{"laptop: delete old-draft.txt", func() error { return os.Remove(filepath.Join(laptop, "old-draft.txt")) }},
		{"laptop: edit notes/todo.txt", func() error {
			return writeFile(filepath.Join(laptop, "notes/todo.txt"), "- buy milk\n- call Ana\n- book the train (laptop)\n")
		}},
		{"cloud:  edit notes/todo.txt differently (a conflict)", func() error {
			return cloud.put(ctx, "notes/todo.txt", "- buy oat milk\n- call Ana\n- water the plants (phone)\n")
		}},
		{"cloud:  add shared/budget.csv", func() error {
			return cloud.put(ctx, "shared/budget.csv", "item,eur\ntrain,42\n")
		}},
		{"cloud:  rename music/song.mp3 to music/favourite.mp3", func() error {
			return cloud.move(ctx, "music/song.mp3", "music/favourite.mp3")
		}},
	}
	say("\nStep 2. Both sides change while they are apart:\n")
	for _, s := range steps {
		say("  %s\n", s.what)
		if err := s.do(); err != nil {
			return fmt.Errorf("demo step %q: %w", s.what, err)
		}
	}
	say("$ tandem once %s %s\n", laptop, cloud.spec)
	if err := demoPass(ctx, app, oo, laptop, cloud.spec, ew); err != nil {
		return err
	}

	say("\nStep 3. One more pass finds nothing to do:\n$ tandem once %s %s\n", laptop, cloud.spec)
	if err := demoPass(ctx, app, oo, laptop, cloud.spec, ew); err != nil {
		return err
	}

	ldir, err := localdir.Open(lg, laptop, localdir.Options{})
	if err != nil {
		return err
	}
	defer ldir.Close()
	say("\nBoth sides now hold the same files:\n")
	for _, side := range []struct {
		name string
		r    remote.Remote
	}{{"laptop", ldir}, {"cloud", cloud.r}} {
		lines, err := demoTree(ctx, side.r)
		if err != nil {
			return err
		}
		say("  %s:\n", side.name)
		for _, l := range lines {
			say("    %s\n", l)
		}
	}
	say(`
What happened:
  - Files new on one side were copied to the other (first pass).
  - The edit of report.txt went up; budget.csv came down.
  - Both renames were replayed as renames: no file content was copied again.
  - old-draft.txt was deleted on the laptop, so tandem deleted it in the cloud, into a trash
    (pCloud's trash), because the cloud still held exactly the version last synced.
  - notes/todo.txt was changed on both sides. tandem never picks a winner silently: the cloud's version
    stays at notes/todo.txt and the laptop's is kept next to it as "todo (conflict <host> <time>).txt",
    on both sides. Merge them and delete the copy when you like.

Try it yourself: the emulator's data is kept in %s. Start it again with
  tandem emulate pcloud --data %s
then edit files in %s and run, with the endpoint and access token it prints,
  tandem once %s %s --state-dir %s --endpoint <endpoint> --access-token <token>
(remove the workspace with: rm -rf %s)
`, cloud.layout, cloud.layout, laptop, laptop, cloud.spec, oo.stateDir, ws)
	return ew.err
}

// demoPass runs one pass in-process and prints it the way `tandem once` does.
func demoPass(ctx context.Context, app *App, o onceOpts, local, spec string, w io.Writer) error {
	res, err := once(ctx, app, o, local, spec)
	if perr := (textPrinter{}).print(w, res); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("demo pass: %w", err)
	}
	return nil
}

// demoWorkspace makes (or checks) the demo's folder: a given one must be empty so the demo never mixes its
// files with someone's data.
func demoWorkspace(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "tandem-demo-")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", usagef("--dir: %v", err)
	}
	ents, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return abs, os.MkdirAll(abs, 0o755)
	case err != nil:
		return "", usagef("--dir: %v", err)
	case len(ents) > 0:
		return "", usagef("--dir %s is not empty: the demo needs an empty or new folder", abs)
	}
	return abs, nil
}

func writeFile(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(data), 0o644)
}

// demoTree lists a side as indented lines with sizes; the content of conflict copies is shown in full.
func demoTree(ctx context.Context, r remote.Remote) ([]string, error) {
	var out []string
	err := r.Walk(ctx, remote.Root, func(e remote.Entry) error {
		if e.Skip != "" {
			return nil
		}
		indent := strings.Repeat("  ", strings.Count(string(e.Path), "/"))
		if e.Dir {
			out = append(out, indent+e.Path.Base()+"/")
			return nil
		}
		line := fmt.Sprintf("%s%s (%s)", indent, remote.Escape(e.Path.Base()), humanBytes(e.Size))
		if strings.HasPrefix(string(e.Path), "notes/todo") {
			body, _, err := r.Open(ctx, e.Path)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			_, err = io.Copy(&b, body)
			body.Close()
			if err != nil {
				return err
			}
			line += ": " + strings.ReplaceAll(strings.TrimSpace(b.String()), "\n", " | ")
		}
		out = append(out, line)
		return nil
	})
	return out, err
}
