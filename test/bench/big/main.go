// Command big times `tandem once` on large generated trees of small files and reports memory in bytes per file
// and time per file at each size (issue 15 item 3; `make bench-big`): a first sync into an empty folder, a
// no-change pass and a pass with one changed file, at each size in turn. Peak RssAnon and RssFile are sampled
// apart from /proc/PID/status: VmRSS adds the state database bbolt maps (RssFile) to the heap (RssAnon), and the
// memory target is about the heap. It writes its own section of results.md and prints it.
//
//	go run ./test/bench/big -tandem bin/tandem -out test/bench/results.md [-sizes 100000,300000,1000000] [-keep]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemsync/tandem/test/bench/measure"
	"github.com/tandemsync/tandem/test/bench/treegen"
)

type config struct {
	tandem, out, work string
	section           string
	sizes             []int
	maxSize           int64
	depth             int
	sample            int
	seed              uint64
	keep              bool
	every             time.Duration
}

func main() {
	var c config
	sizes := flag.String("sizes", "100000,300000,1000000", "file counts to run, comma-separated (k and M suffixes allowed: 100k,1M)")
	flag.StringVar(&c.tandem, "tandem", "bin/tandem", "the tandem binary")
	flag.StringVar(&c.out, "out", "test/bench/results.md", "the results file: this command replaces its own section and keeps the rest")
	flag.StringVar(&c.section, "section", "bench-big", "the name of this run's section of -out (another name keeps an earlier run's section beside this one)")
	flag.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "tandem-bench-big"), "scratch folder for the trees and the state database")
	flag.Int64Var(&c.maxSize, "maxsize", 64, "largest file, bytes (sizes are log-uniform from 0)")
	flag.IntVar(&c.depth, "depth", 6, "deepest folder level")
	flag.IntVar(&c.sample, "sample", 2000, "files whose bytes are compared after each pass, chosen at random (the listing is compared in full)")
	flag.Uint64Var(&c.seed, "seed", 15, "random seed of the trees and the sample")
	flag.BoolVar(&c.keep, "keep", false, "keep the trees and state databases in -work (they are large)")
	flag.DurationVar(&c.every, "every", 20*time.Millisecond, "interval between /proc memory samples")
	flag.Parse()
	var err error
	if c.sizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-big:", err)
		os.Exit(2)
	}
	if abs, err := filepath.Abs(c.tandem); err == nil {
		c.tandem = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-big:", err)
		stop()
		os.Exit(1)
	}
}

// parseSizes reads "100000,300k,1M".
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			f, mult = strings.TrimSuffix(f, "k"), 1_000
		case strings.HasSuffix(f, "M"):
			f, mult = strings.TrimSuffix(f, "M"), 1_000_000
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n*mult < 100 {
			return nil, fmt.Errorf("-sizes %q: want file counts of at least 100, comma-separated (100000,300k,1M)", s)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// row is one timed pass.
type row struct {
	files int
	scen  string
	u     measure.Usage
	load  [2]string
}

type sizeResult struct {
	files, folders int
	gen            time.Duration
	db             int64 // bytes of the state folder after the first sync
	rows           []row
	sampled        int
}

func run(ctx context.Context, c config) error {
	if _, err := os.Stat(c.tandem); err != nil {
		return fmt.Errorf("tandem binary: %w (run make build first)", err)
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	if !c.keep {
		defer os.Remove(c.work) // only if empty: the folder may be the user's
	}
	// Earlier kept trees are this command's own (big-N): they go before the space check counts the disk.
	old, _ := filepath.Glob(filepath.Join(c.work, "big-*"))
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := checkSpace(c); err != nil {
		return err
	}
	version := "version unknown"
	if out, err := exec.Command(c.tandem, "version").Output(); err == nil {
		version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	started := time.Now().UTC()
	var results []sizeResult
	for _, n := range c.sizes {
		r, err := runSize(ctx, c, n)
		if err != nil {
			return fmt.Errorf("%d files: %w", n, err)
		}
		results = append(results, r)
	}
	md := report(c, version, started, results)
	fmt.Print(md)
	return measure.WriteSection(c.out, c.section, md)
}

// checkSpace refuses to start when the largest size (every size with -keep) cannot fit: two copies of the tree,
// a block per file and per folder each, and the state database (about 3 KB per file measured; 4 KiB counted).
func checkSpace(c config) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.work, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", c.work, err)
	}
	bs := int64(st.Bsize)
	perFile := 2*((c.maxSize+bs-1)/bs*bs) + 4096
	var files int64
	for _, n := range c.sizes {
		if c.keep {
			files += int64(n)
		} else {
			files = max(files, int64(n))
		}
	}
	folders := files / 100
	needBytes := (files*perFile+2*folders*bs)*11/10 + 1<<30 // 10 % and 1 GiB to spare
	needInodes := 2*(files+folders)*11/10 + 10_000
	freeBytes := int64(st.Bavail) * bs
	freeInodes := int64(st.Ffree)
	if freeBytes < needBytes || (st.Files > 0 && freeInodes < needInodes) {
		return fmt.Errorf("not enough room in %s: %d files need about %.1f GiB and %d inodes, the disk has %.1f GiB and %d inodes free; "+
			"choose smaller sizes (BIG_SIZES=100000,300000) or another scratch folder (BENCH_BIG_ARGS='-work /big/disk')",
			c.work, files, float64(needBytes)/(1<<30), needInodes, float64(freeBytes)/(1<<30), freeInodes)
	}
	fmt.Fprintf(os.Stderr, "== %s: %.1f GiB and %d inodes free, about %.1f GiB and %d inodes needed\n",
		c.work, float64(freeBytes)/(1<<30), freeInodes, float64(needBytes)/(1<<30), needInodes)
	return nil
}

func runSize(ctx context.Context, c config, n int) (res sizeResult, err error) {
	base := filepath.Join(c.work, fmt.Sprintf("big-%d", n))
	L, R, S := filepath.Join(base, "L"), filepath.Join(base, "R"), filepath.Join(base, "S")
	if !c.keep {
		defer func() {
			if rmErr := os.RemoveAll(base); rmErr != nil && err == nil {
				err = rmErr
			}
		}()
	}
	res.files, res.folders = n, max(1, n/100)
	fmt.Fprintf(os.Stderr, "== generating %d files in %d folders under %s\n", n, res.folders, L)
	start := time.Now()
	if err := treegen.SmallContext(ctx, L, n, res.folders, c.depth, c.maxSize, c.seed); err != nil {
		return res, fmt.Errorf("generating the tree: %w", err)
	}
	res.gen = time.Since(start)
	if err := os.MkdirAll(R, 0o755); err != nil {
		return res, err
	}
	pass := func(scen string, args ...string) (*os.File, error) {
		logf, err := os.Create(filepath.Join(base, strings.ReplaceAll(scen, " ", "-")+".log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(c.tandem, append(append([]string{"once", "--state-dir", S}, args...), L, "dir:"+R)...)
		cmd.Stdout, cmd.Stderr = logf, logf
		fmt.Fprintf(os.Stderr, "== %d files: %s\n", n, scen)
		r := row{files: n, scen: scen}
		r.load[0] = measure.Loadavg()
		r.u, err = measure.Run(ctx, cmd, c.every)
		r.load[1] = measure.Loadavg()
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("%s: %s: %w\n%s", scen, strings.Join(cmd.Args, " "), err, tail(logf.Name()))
		}
		res.rows = append(res.rows, r)
		_, err = logf.Seek(0, io.SeekStart)
		return logf, err
	}

	// First sync: plain output (one line per file goes to the log; --json would hold every action in memory).
	logf, err := pass("first sync")
	if err != nil {
		return res, err
	}
	logf.Close()
	if res.db, err = duBytes(S); err != nil {
		return res, err
	}
	sample, err := checkReplica(ctx, L, R, c.sample, c.seed)
	if err != nil {
		return res, fmt.Errorf("after the first sync the replica differs: %w", err)
	}
	res.sampled = len(sample)

	// The first pass after a first sync costs more than the ones after it (it reads the files again), so it
	// is a row of its own and the steady no-change pass is the second.
	for _, scen := range []string{"first no-change pass", "no-change pass"} {
		if err := jsonPass(pass, scen, 0); err != nil {
			return res, err
		}
		if _, err := checkReplica(ctx, L, R, c.sample, c.seed); err != nil {
			return res, fmt.Errorf("after the %s the replica differs: %w", scen, err)
		}
	}

	changed := sample[0]
	if err := change(filepath.Join(L, changed), c.seed); err != nil {
		return res, err
	}
	if err := jsonPass(pass, "one change", 1); err != nil {
		return res, err
	}
	if err := sameFile(filepath.Join(L, changed), filepath.Join(R, changed)); err != nil {
		return res, fmt.Errorf("after the one-change pass, the changed file %s: %w", changed, err)
	}
	if _, err := checkReplica(ctx, L, R, c.sample, c.seed); err != nil {
		return res, fmt.Errorf("after the one-change pass the replica differs: %w", err)
	}
	return res, nil
}

// jsonPass runs a pass with --json (its report holds only what the pass did: nothing, or one upload) and checks
// that it uploaded exactly `uploads` files and did nothing else.
func jsonPass(pass func(string, ...string) (*os.File, error), scen string, uploads int64) error {
	logf, err := pass(scen, "--json")
	if err != nil {
		return err
	}
	defer logf.Close()
	var doc struct {
		OK     bool             `json:"ok"`
		Totals map[string]int64 `json:"totals"`
	}
	if err := json.NewDecoder(logf).Decode(&doc); err != nil {
		return fmt.Errorf("%s: its --json report: %w\n%s", scen, err, tail(logf.Name()))
	}
	for k, v := range doc.Totals {
		want := int64(0)
		switch k {
		case "uploaded":
			want = uploads
		case "up_bytes":
			continue
		}
		if v != want || !doc.OK {
			return fmt.Errorf("%s: ok %v, %s = %d, want %d\n%s", scen, doc.OK, k, v, want, tail(logf.Name()))
		}
	}
	return nil
}

// change rewrites a file with other bytes of the same size (at least one byte) and a new mtime.
func change(p string, seed uint64) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	b := make([]byte, max(fi.Size(), 1))
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 'c', 'h', 'g'}).Read(b)
	old, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if string(old) == string(b) {
		b[0]++
	}
	return os.WriteFile(p, b, 0o644)
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func duBytes(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// item is one entry of a tree's listing.
type item struct {
	path string
	dir  bool
	size int64
	err  error
}

// walk streams root's entries in lexical order (filepath.WalkDir's), leaving out tandem's .tandem folder at the
// top, so two trees compare without holding a million paths in memory.
func walk(ctx context.Context, root string) <-chan item {
	ch := make(chan item, 4096)
	go func() {
		defer close(ch)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(root, p)
			if r == "." {
				return nil
			}
			if r == ".tandem" {
				return filepath.SkipDir
			}
			it := item{path: filepath.ToSlash(r), dir: d.IsDir()}
			if !it.dir {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				if !fi.Mode().IsRegular() {
					return fmt.Errorf("%s is neither a file nor a folder", r)
				}
				it.size = fi.Size()
			}
			select {
			case ch <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			select {
			case ch <- item{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return ch
}

// checkReplica compares the full listings of a and b (relative paths, kinds, sizes), then the bytes of k files
// of a chosen at random (reservoir sampling, seeded: the same files every pass), and returns those files.
func checkReplica(ctx context.Context, a, b string, k int, seed uint64) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ca, cb := walk(ctx, a), walk(ctx, b)
	rng := rand.New(rand.NewPCG(seed, 0x5a4d))
	var sample []string
	files := 0
	for {
		x, okA := <-ca
		y, okB := <-cb
		switch {
		case !okA && !okB:
			if files == 0 {
				return nil, errors.New("the source has no files")
			}
			slices.Sort(sample) // the order of reading, not of choosing
			for _, p := range sample {
				if err := sameFile(filepath.Join(a, p), filepath.Join(b, p)); err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
			}
			return sample, nil
		case x.err != nil:
			return nil, x.err
		case y.err != nil:
			return nil, y.err
		case !okB:
			return nil, fmt.Errorf("%s is missing from the replica", x.path)
		case !okA:
			return nil, fmt.Errorf("%s is extra in the replica", y.path)
		case x.path != y.path:
			if x.path < y.path {
				return nil, fmt.Errorf("%s is missing from the replica", x.path)
			}
			return nil, fmt.Errorf("%s is extra in the replica", y.path)
		case x.dir != y.dir:
			return nil, fmt.Errorf("%s is a folder on one side only", x.path)
		case x.size != y.size:
			return nil, fmt.Errorf("%s has %d bytes, the replica %d", x.path, x.size, y.size)
		}
		if x.dir {
			continue
		}
		files++
		if len(sample) < k {
			sample = append(sample, x.path)
		} else if j := rng.IntN(files); j < k {
			sample[j] = x.path
		}
	}
}

func sameFile(a, b string) error {
	x, err := os.ReadFile(a)
	if err != nil {
		return err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return err
	}
	if string(x) != string(y) {
		return errors.New("contents differ")
	}
	return nil
}

func report(c config, version string, started time.Time, results []sizeResult) string {
	var md strings.Builder
	fmt.Fprintf(&md, "## Large trees of small files (`make bench-big`)\n\n")
	var sizes []string
	for _, n := range c.sizes {
		sizes = append(sizes, strconv.Itoa(n))
	}
	fmt.Fprintf(&md, "`go run ./test/bench/big -sizes %s` on %s, %s, %d CPUs, %s. ", strings.Join(sizes, ","),
		started.Format("2006-01-02 15:04 UTC"), measure.Kernel(), measure.NumCPU(), version)
	fmt.Fprintf(&md, "Trees from `treegen.Small` (seed %d): N files of 0-%d bytes (log-uniform) in N/100 folders up to depth %d, dated an hour back. ",
		c.seed, c.maxSize, c.depth)
	fmt.Fprintf(&md, "At each size: `tandem once --state-dir S L dir:R` into an empty R (first sync), twice again with nothing changed (the first no-change pass after a sync "+
		"costs more than the later ones, so it has a row of its own), and again after one file was rewritten (one change); one run each, the page cache as the generation left it. ")
	fmt.Fprintf(&md, "Memory: the largest RssAnon (heap, stacks) and RssFile (mapped files: mostly the state database bbolt maps) "+
		"seen in /proc/PID/status samples every %v; VmRSS is their sum. ", c.every)
	fmt.Fprintf(&md, "Replica check after every pass: the listings of L and R (relative path, kind, size of every entry) compared in full, "+
		"and the bytes of %d files chosen at random (seeded) plus the changed file compared; the no-change passes must report nothing done "+
		"and the one-change pass exactly one upload. The load average (1 min) before and after each pass is beside it: the machine may be shared.\n\n", c.sample)
	md.WriteString("| files | scenario | load | wall | CPU (user+sys) | peak RssAnon | peak RssFile | RssAnon per file | wall per file | CPU per file |\n")
	md.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		for _, x := range r.rows {
			f := float64(x.files)
			fmt.Fprintf(&md, "| %s | %s | %s→%s | %.2f s | %.2f s | %.1f MiB | %.1f MiB | %.0f B | %.1f µs | %.1f µs |\n",
				thousands(x.files), x.scen, x.load[0], x.load[1], x.u.Wall.Seconds(), x.u.CPU().Seconds(),
				float64(x.u.PeakAnon)/1024, float64(x.u.PeakFile)/1024, float64(x.u.PeakAnon)*1024/f,
				x.u.Wall.Seconds()*1e6/f, x.u.CPU().Seconds()*1e6/f)
		}
	}
	md.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(&md, "- %s files in %s folders: generated in %.1f s; state database %.1f MiB after the first sync (%.0f bytes per file); %d files compared byte for byte after each pass.\n",
			thousands(r.files), thousands(r.folders), r.gen.Seconds(), float64(r.db)/(1<<20), float64(r.db)/float64(r.files), r.sampled)
	}
	if len(results) > 1 {
		md.WriteString("\nLinearity, wall time per file from the smallest size to the largest (a ratio near 1 is linear):\n\n")
		first, last := results[0], results[len(results)-1]
		for i, fr := range first.rows {
			if i >= len(last.rows) {
				break
			}
			var steps []string
			for _, r := range results {
				steps = append(steps, fmt.Sprintf("%.1f µs", r.rows[i].u.Wall.Seconds()*1e6/float64(r.files)))
			}
			a := fr.u.Wall.Seconds() / float64(first.files)
			b := last.rows[i].u.Wall.Seconds() / float64(last.files)
			fmt.Fprintf(&md, "- %s: %s (%.2f x)\n", fr.scen, strings.Join(steps, ", "), b/a)
		}
	}
	var peak row
	for _, r := range results {
		for _, x := range r.rows {
			if x.u.PeakAnon > peak.u.PeakAnon {
				peak = x
			}
		}
	}
	fmt.Fprintf(&md, "\nLargest RssAnon: %.1f MiB (%s, %s files). Issue 15's targets: under 30 MiB for a no-change pass at 100,000 files, under 200 MiB at 1,000,000.\n",
		float64(peak.u.PeakAnon)/1024, peak.scen, thousands(peak.files))
	return md.String()
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
