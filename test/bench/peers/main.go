// Command peers runs tandem and the peer tools on the same seeded trees and writes one table of medians, ratios
// and peak RSS (issue 15; `make bench-peers`). Every replica is checked byte for byte against its source after
// every run. A peer that is not installed is skipped, with the reason in the table. The figures are wall times on
// whatever machine runs it: the load average is printed beside each scenario, and only ratios within one run
// compare.
//
//	go run ./test/bench/peers -tandem bin/tandem -out test/bench/results.md [-runs 3] [-trees 10k,100k,big]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tandemsync/tandem/test/bench/treegen"
)

type tree struct {
	name   string
	gen    func(dir string) error
	passes bool // no-change and one-change passes make sense (small files)
}

// tool syncs src to dst; state is a fresh folder for the tool's own state, kept across the runs on one replica.
type tool struct {
	name    string
	bin     string
	missing string
	first   func(src, dst, state string) *exec.Cmd
	again   func(src, dst, state string) *exec.Cmd // nil: no incremental pass (one-way copies)
}

type result struct {
	secs []float64
	rss  []int64 // KiB
	note string
}

func main() {
	tandem := flag.String("tandem", "bin/tandem", "the tandem binary")
	out := flag.String("out", "test/bench/results.md", "where the table goes")
	runs := flag.Int("runs", 3, "runs per scenario (the median is reported)")
	trees := flag.String("trees", "10k,100k,big", "trees to run: 10k, 100k, big (smoke: 300 files, to check the harness)")
	only := flag.String("tools", "", "comma-separated tools to run (default all): tandem, unison, rclone bisync, rclone copy, cp -r")
	work := flag.String("work", filepath.Join(os.TempDir(), "tandem-bench-peers"), "scratch folder (emptied)")
	flag.Parse()
	if abs, err := filepath.Abs(*tandem); err == nil {
		*tandem = abs
	}
	ts := tools(*tandem)
	if *only != "" {
		keep := strings.Split(*only, ",")
		ts = slices.DeleteFunc(ts, func(t tool) bool { return !slices.Contains(keep, t.name) })
	}
	if err := run(ts, *tandem, *out, *runs, strings.Split(*trees, ","), *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

func allTrees() []tree {
	return []tree{
		{"10k", func(d string) error { return treegen.Small(d, 10_000, 500, 6, 256<<10, 15) }, true},
		{"100k", func(d string) error { return treegen.Small(d, 100_000, 5_000, 6, 256<<10, 15) }, true},
		{"big", func(d string) error { return treegen.Big(d, 4, 256<<20, 15) }, false},
		{"smoke", func(d string) error { return treegen.Small(d, 300, 15, 6, 256<<10, 15) }, true}, // checks the harness
	}
}

func tools(tandem string) []tool {
	ts := []tool{
		{name: "tandem", bin: tandem,
			first: func(s, d, st string) *exec.Cmd { return exec.Command(tandem, "once", "--state-dir", st, s, "dir:"+d) }},
		{name: "unison", bin: "unison",
			first: func(s, d, st string) *exec.Cmd {
				c := exec.Command("unison", s, d, "-batch", "-auto", "-times", "-ignore", "Name .tandem")
				c.Env = append(os.Environ(), "UNISON="+st)
				return c
			}},
		{name: "rclone bisync", bin: "rclone",
			first: func(s, d, st string) *exec.Cmd {
				return exec.Command("rclone", "bisync", s, d, "--resync", "--workdir", st, "--exclude", "/.tandem/**", "--config", filepath.Join(st, "rclone.conf"))
			},
			again: func(s, d, st string) *exec.Cmd {
				return exec.Command("rclone", "bisync", s, d, "--workdir", st, "--exclude", "/.tandem/**", "--config", filepath.Join(st, "rclone.conf"))
			}},
		{name: "rclone copy", bin: "rclone",
			first: func(s, d, st string) *exec.Cmd {
				return exec.Command("rclone", "copy", s, d, "--exclude", "/.tandem/**", "--config", filepath.Join(st, "rclone.conf"))
			}},
		{name: "cp -r", bin: "cp",
			first: func(s, d, st string) *exec.Cmd { return exec.Command("cp", "-r", s+"/.", d) }},
	}
	for i := range ts {
		if ts[i].name == "tandem" || ts[i].name == "unison" {
			ts[i].again = ts[i].first
		}
		if _, err := exec.LookPath(ts[i].bin); err != nil {
			ts[i].missing = "not installed (" + ts[i].bin + " is not in PATH)"
		}
	}
	return ts
}

func run(ts []tool, tandem, out string, runs int, names []string, work string) error {
	if _, err := os.Stat(tandem); err != nil {
		return fmt.Errorf("tandem binary: %w (run make build first)", err)
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var md strings.Builder
	fmt.Fprintf(&md, "# tandem and its peers, same trees, same run\n\n")
	fmt.Fprintf(&md, "`make bench-peers` (go run ./test/bench/peers -runs %d -trees %s) on %s, %s, %d CPUs as Go sees them.\n",
		runs, strings.Join(names, ","), time.Now().UTC().Format("2006-01-02 15:04 UTC"), kernel(), numCPU())
	fmt.Fprintf(&md, "Each cell: the median wall time of %d runs, then the largest peak RSS of those runs. Every replica was compared byte for byte with its source after every run. The machine may be shared: the load average (1 min) before and after each row is printed beside it; compare ratios within a row only.\n\n", runs)
	for _, t := range ts {
		v := t.missing
		if v == "" {
			v = version(t)
		}
		fmt.Fprintf(&md, "- %s: %s\n", t.name, v)
	}
	fmt.Fprintf(&md, "\n| scenario | load | %s | tandem / peer |\n|---|---|", joinNames(ts))
	for range ts {
		md.WriteString("---|")
	}
	md.WriteString("---|\n")
	for _, tr := range allTrees() {
		if !slices.Contains(names, tr.name) {
			continue
		}
		src := filepath.Join(work, "src-"+tr.name)
		fmt.Fprintf(os.Stderr, "== generating %s\n", tr.name)
		if err := tr.gen(src); err != nil {
			return err
		}
		files, err := listFiles(src)
		if err != nil {
			return err
		}
		scen := []string{"first sync"}
		if tr.passes {
			scen = append(scen, "no-change pass", "one change")
		}
		res := map[string]map[string]*result{}
		loads := map[string][2]string{}
		for _, s := range scen {
			res[s] = map[string]*result{}
			loads[s] = [2]string{loadavg(), ""}
		}
		for _, t := range ts {
			if t.missing != "" {
				continue
			}
			if err := runTool(t, tr, src, files, work, runs, scen, res); err != nil {
				return err
			}
		}
		for _, s := range scen {
			l := loads[s]
			l[1] = loadavg()
			fmt.Fprintf(&md, "| %s, %s | %s→%s |", s, tr.name, l[0], l[1])
			var tandemMed float64
			if r := res[s]["tandem"]; r != nil && len(r.secs) > 0 {
				tandemMed = median(r.secs)
			}
			var ratios []string
			for _, t := range ts {
				r := res[s][t.name]
				switch {
				case t.missing != "":
					md.WriteString(" skipped: " + t.missing + " |")
				case r == nil || len(r.secs) == 0:
					n := "-"
					if r != nil && r.note != "" {
						n = r.note
					}
					md.WriteString(" " + n + " |")
				default:
					rss := "? MB"
					if m := slices.Max(r.rss); m > 0 {
						rss = fmt.Sprintf("%d MB", m/1024)
					}
					fmt.Fprintf(&md, " %.2f s, %s |", median(r.secs), rss)
					if t.name != "tandem" && tandemMed > 0 {
						ratios = append(ratios, fmt.Sprintf("%s %.2f", t.name, tandemMed/median(r.secs)))
					}
				}
			}
			fmt.Fprintf(&md, " %s |\n", strings.Join(ratios, "; "))
		}
		if err := os.RemoveAll(src); err != nil {
			return err
		}
	}
	fmt.Print(md.String())
	return os.WriteFile(out, []byte(md.String()), 0o644)
}

func runTool(t tool, tr tree, src string, files []string, work string, runs int, scen []string, res map[string]map[string]*result) error {
	dst := filepath.Join(work, "dst")
	state := filepath.Join(work, "state")
	for _, s := range scen {
		r := &result{}
		res[s][t.name] = r
		if s != "first sync" && t.again == nil {
			continue
		}
		for i := range runs {
			var cmd *exec.Cmd
			switch s {
			case "first sync":
				for _, d := range []string{dst, state} {
					if err := os.RemoveAll(d); err != nil {
						return err
					}
					if err := os.MkdirAll(d, 0o755); err != nil {
						return err
					}
				}
				cmd = t.first(src, dst, state)
			case "one change":
				if err := change(filepath.Join(src, files[(i*7919)%len(files)]), uint64(i)); err != nil {
					return err
				}
				cmd = t.again(src, dst, state)
			default:
				cmd = t.again(src, dst, state)
			}
			fmt.Fprintf(os.Stderr, "== %s %s %s run %d\n", t.name, s, tr.name, i+1)
			secs, rss, err := timed(cmd, work)
			if err != nil {
				return fmt.Errorf("%s, %s %s: %w", t.name, s, tr.name, err)
			}
			if err := sameTree(src, dst); err != nil {
				return fmt.Errorf("%s, %s %s: replica differs: %w", t.name, s, tr.name, err)
			}
			r.secs, r.rss = append(r.secs, secs), append(r.rss, rss)
		}
	}
	return os.RemoveAll(dst)
}

// timed runs cmd and returns its wall time and peak RSS (KiB, 0: unknown). The RSS comes from GNU time: a
// child's own rusage would start from this process's size (Linux carries the forking image's peak over exec).
func timed(cmd *exec.Cmd, scratch string) (float64, int64, error) {
	rssFile := filepath.Join(scratch, "rss")
	if gt, err := exec.LookPath("/usr/bin/time"); err == nil {
		w := exec.Command(gt, append([]string{"-f", "%M", "-o", rssFile}, cmd.Args...)...)
		w.Env = cmd.Env
		cmd = w
	}
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	start := time.Now()
	err := cmd.Run()
	secs := time.Since(start).Seconds()
	if err != nil {
		tail := outb.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return 0, 0, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail)
	}
	var rss int64
	if b, err := os.ReadFile(rssFile); err == nil {
		fmt.Sscan(strings.TrimSpace(string(b)), &rss) // 0 (printed "?") without GNU time
	}
	return secs, rss, nil
}

// change rewrites one file with new bytes of the same size and a new mtime.
func change(p string, seed uint64) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	b := make([]byte, max(fi.Size(), 1))
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 'c', 'h'}).Read(b)
	return os.WriteFile(p, b, 0o644)
}

func listFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			r, _ := filepath.Rel(root, p)
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// sameTree: every file and folder of a is in b with the same bytes, and b holds nothing else (tandem's .tandem
// folder at the top of either is left out).
func sameTree(a, b string) error {
	la, err := listAll(a)
	if err != nil {
		return err
	}
	lb, err := listAll(b)
	if err != nil {
		return err
	}
	if !slices.Equal(la, lb) {
		for _, p := range la {
			if !slices.Contains(lb, p) {
				return fmt.Errorf("%s is missing", p)
			}
		}
		for _, p := range lb {
			if !slices.Contains(la, p) {
				return fmt.Errorf("%s is extra", p)
			}
		}
	}
	for _, p := range la {
		if strings.HasSuffix(p, "/") {
			continue
		}
		if err := sameFile(filepath.Join(a, p), filepath.Join(b, p)); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func listAll(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		switch {
		case r == ".":
		case r == ".tandem":
			return filepath.SkipDir
		case d.IsDir():
			out = append(out, r+"/")
		default:
			out = append(out, r)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// cmpBufs are sameFile's buffers, allocated once: a fresh pair per file made the comparison of 10,000 files
// spend its time in the garbage collector.
var cmpBufs = [2][]byte{make([]byte, 1<<20), make([]byte, 1<<20)}

func sameFile(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := cmpBufs[0], cmpBufs[1]
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return errors.New("contents differ")
		}
		if ea != nil || eb != nil {
			if (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF) {
				return nil
			}
			return errors.Join(ea, eb)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func joinNames(ts []tool) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.name)
	}
	return strings.Join(n, " | ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

func version(t tool) string {
	args := []string{"--version"}
	if t.name == "unison" {
		args = []string{"-version"}
	}
	if t.name == "tandem" {
		args = []string{"version"}
	}
	out, err := exec.Command(t.bin, args...).CombinedOutput()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}
