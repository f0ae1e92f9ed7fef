// Command peers runs tandem and the peer tools on the same seeded trees and writes one table of medians, ratios
// and peak RSS (issue 15; `make bench-peers`). Every replica is checked byte for byte against its source after
// every run. A peer that is not installed is skipped, with the reason in the table. The figures are wall times on
// whatever machine runs it: the load average is printed beside each scenario, and only ratios within one run
// compare. The same scenarios run against the pCloud emulator (served by this process over HTTPS on 127.0.0.1,
// a fresh account for every first sync) for tandem and `rclone copy`, the peers that speak pCloud's API. The
// table is this command's own section of the results file: the rest of the file is kept.
//
//	go run ./test/bench/peers -tandem bin/tandem -out test/bench/results.md [-runs 3] [-trees 10k,100k,big] [-targets dir,pcloud]
package main

import (
	"bytes"
	"context"
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandemsync/tandem/test/bench/measure"
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
	// pcloud syncs src to the emulator's folder (nil: the tool does not speak pCloud's API); pcloudAgain: the
	// same command is also the incremental pass.
	pcloud      func(src string, e *pcloudEmu, state string) *exec.Cmd
	pcloudAgain bool
}

// Targets: where the replica goes.
const (
	targetDir    = "dir"    // a local folder
	targetPCloud = "pcloud" // the pCloud emulator
)

type result struct {
	secs []float64
	rss  []int64 // KiB
	note string
}

func main() {
	tandem := flag.String("tandem", "bin/tandem", "the tandem binary")
	out := flag.String("out", "test/bench/results.md", "where the table goes")
	runs := flag.Int("runs", 3, "runs per scenario (the median is reported)")
	trees := flag.String("trees", "10k,100k,big", "trees to run: 10k, 100k, big (smoke: 300 files, smoke-big: 2 x 80 MiB, to check the harness)")
	only := flag.String("tools", "", "comma-separated tools to run (default all): tandem, unison, rclone bisync, rclone copy, rclone copy + sync, cp -r, cp -r + sync")
	work := flag.String("work", filepath.Join(os.TempDir(), "tandem-bench-peers"), "scratch folder (emptied)")
	section := flag.String("section", "bench-peers", "the name of this run's section of -out (another name keeps an earlier run's table beside this one)")
	flag.DurationVar(&settleWait, "settle", settleWait, "wait after removing replicas on ext4 without a journal (see settle; 0 for a quick check of the harness)")
	targets := flag.String("targets", "dir,pcloud", "replica targets: dir (a local folder, every tool) and pcloud (the pCloud emulator: tandem and rclone copy)")
	tandemB := flag.String("tandem-b", "", "a second tandem binary, timed as the tool \"tandem B\" in turn with the others (two builds compared in one run)")
	flag.Parse()
	if abs, err := filepath.Abs(*tandem); err == nil {
		*tandem = abs
	}
	if abs, err := filepath.Abs(*work); err == nil {
		*work = abs
	}
	tg := strings.Split(*targets, ",")
	for _, t := range tg {
		if t != targetDir && t != targetPCloud {
			fmt.Fprintf(os.Stderr, "bench-peers: -targets %q: want dir, pcloud or both\n", *targets)
			os.Exit(2)
		}
	}
	ts := tools(*tandem)
	if *tandemB != "" {
		if abs, err := filepath.Abs(*tandemB); err == nil {
			*tandemB = abs
		}
		b := tools(*tandemB)[0]
		b.name = "tandem B"
		ts = slices.Insert(ts, 1, b)
	}
	if *only != "" {
		keep := append(strings.Split(*only, ","), "tandem B")
		ts = slices.DeleteFunc(ts, func(t tool) bool { return !slices.Contains(keep, t.name) })
	}
	if err := run(ts, *tandem, *out, *section, *runs, strings.Split(*trees, ","), tg, *work); err != nil {
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
		// checks the harness on large files (above pcloudBytesLimit: the pCloud check compares SHA-1s)
		{"smoke-big", func(d string) error { return treegen.Big(d, 2, 80<<20, 15) }, false},
	}
}

func tools(tandem string) []tool {
	ts := []tool{
		{name: "tandem", bin: tandem,
			first:       func(s, d, st string) *exec.Cmd { return exec.Command(tandem, "once", "--state-dir", st, s, "dir:"+d) },
			pcloud:      func(s string, e *pcloudEmu, st string) *exec.Cmd { return e.tandemCmd(tandem, s, st) },
			pcloudAgain: true},
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
			},
			pcloud: func(s string, e *pcloudEmu, st string) *exec.Cmd { return e.rcloneCopyCmd(s, st) }},
		// rclone copy made durable the cheapest way its user could: one flush of the replica's filesystem at the
		// end. rclone writes no file durably (no fsync at all), so a crash right after `rclone copy` returns can
		// take any part of the replica; tandem's first sync makes each file durable before it records it, and
		// this row says what that costs against the same guarantee for the whole copy at once.
		{name: "rclone copy + sync", bin: "rclone",
			first: func(s, d, st string) *exec.Cmd {
				return exec.Command("sh", "-c", `rclone copy "$1" "$2" --exclude "/.tandem/**" --config "$3" && sync -f "$2"`,
					"sh", s, d, filepath.Join(st, "rclone.conf"))
			}},
		{name: "cp -r", bin: "cp",
			first: func(s, d, st string) *exec.Cmd { return exec.Command("cp", "-r", s+"/.", d) }},
		// The floor of a durable copy: the same copy, then one flush of the replica's filesystem (sync -f is
		// syncfs). tandem makes each file durable before it records it; this makes all of them durable once,
		// at the end, with no order among them: no durable copy can be cheaper.
		{name: "cp -r + sync", bin: "cp",
			first: func(s, d, st string) *exec.Cmd {
				return exec.Command("sh", "-c", `cp -r "$1/." "$2" && sync -f "$2"`, "sh", s, d)
			}},
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

func run(ts []tool, tandem, out, section string, runs int, names, targets []string, work string) error {
	if _, err := os.Stat(tandem); err != nil {
		return fmt.Errorf("tandem binary: %w (run make build first)", err)
	}
	if _, err := os.Stat(work); err == nil {
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		if err := settle(filepath.Dir(work)); err != nil {
			return err
		}
	}
	defer os.RemoveAll(work)
	var md strings.Builder
	fmt.Fprintf(&md, "# tandem and its peers, same trees, same run\n\n")
	fmt.Fprintf(&md, "`make bench-peers` (go run ./test/bench/peers -runs %d -trees %s -targets %s) on %s, %s, %d CPUs as Go sees them.\n",
		runs, strings.Join(names, ","), strings.Join(targets, ","), time.Now().UTC().Format("2006-01-02 15:04 UTC"), measure.Kernel(), measure.NumCPU())
	fmt.Fprintf(&md, "Each cell: the median wall time of %d runs, then the largest peak RSS of those runs. Every replica was compared byte for byte with its source after every run, and every timed run began after a sync(2), so that none is timed while the kernel writes back what the step before it wrote, and after a read of its whole source, so that each finds it in the page cache. Each first sync writes a replica of its own, and replicas are removed only after a row, never between two timed runs; where the disk is ext4 without a journal the next timed run waits %s after a removal (that filesystem reuses no inode deleted in the last minute, and every file created meanwhile scans past them: a first sync right after a removal took 2.5 to 4 times as long, for every tool). The tools take turns within each run (the first syncs in an order that changes from run to run, so that no tool always runs right after the same one, and the incremental passes after one untimed pass each), so that the machine's drift over minutes falls on all of them; the ratio in parentheses is the median of the per-run ratios. The machine may be shared: the load average (1 min) before and after each row is printed beside it; compare ratios within a row only.\n", runs, settleWait)
	if slices.Contains(targets, targetPCloud) {
		fmt.Fprintf(&md, "Rows marked pCloud sync to the pCloud emulator (remote/pcloud/emulator), served by the benchmark process over HTTPS on 127.0.0.1 with a fresh account for every first sync; only tandem and rclone copy speak its API. "+
			"Its work (TLS, three digests of every upload, its own database) is in both tools' wall times, not in their RSS. "+
			"Those replicas were checked through the emulator's own view: every path and size, the bytes of every file up to %d MiB and the SHA-1 the emulator computed of larger ones.\n", pcloudBytesLimit>>20)
	}
	md.WriteString("\n")
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
		for _, tg := range targets {
			res := map[string]map[string]*result{}
			loads := map[string][2]string{}
			for _, s := range scen {
				res[s] = map[string]*result{}
				loads[s] = [2]string{measure.Loadavg(), ""}
			}
			var reps []*replica
			err := func() error {
				var err error
				if reps, err = firstSyncs(ts, tr, tg, src, work, runs, res["first sync"]); err != nil {
					return err
				}
				return incremental(reps, tr, tg, src, files, work, runs, scen, res)
			}()
			for _, rep := range reps {
				err = errors.Join(err, rep.close())
			}
			if err == nil && len(reps) > 0 {
				err = settle(work)
			}
			if err != nil {
				return err
			}
			for _, s := range scen {
				l := loads[s]
				l[1] = measure.Loadavg()
				fmt.Fprintf(&md, "| %s, %s | %s→%s |", s, targetLabel(tr, tg), l[0], l[1])
				md.WriteString(cells(ts, res[s], true))
			}
		}
		if err := os.RemoveAll(src); err != nil {
			return err
		}
		if err := settle(work); err != nil {
			return err
		}
	}
	fmt.Print(md.String())
	return measure.WriteSection(out, section, md.String())
}

// cells renders one row's tool columns and its ratios column.
// paired: the runs of each tool were timed in turn (the incremental passes), so run i of tandem and run i of a
// peer met the same state of the machine; their ratios' median follows the plain one in parentheses.
func cells(ts []tool, res map[string]*result, paired bool) string {
	var md strings.Builder
	var tandemMed float64
	if r := res["tandem"]; r != nil && len(r.secs) > 0 {
		tandemMed = median(r.secs)
	}
	var ratios []string
	for _, t := range ts {
		r := res[t.name]
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
				ratio := fmt.Sprintf("%s %.2f", t.name, tandemMed/median(r.secs))
				if tr := res["tandem"]; paired && len(tr.secs) == len(r.secs) {
					per := make([]float64, len(r.secs))
					for i := range per {
						per[i] = tr.secs[i] / r.secs[i]
					}
					ratio += fmt.Sprintf(" (paired %.2f)", median(per))
				}
				ratios = append(ratios, ratio)
			}
		}
	}
	fmt.Fprintf(&md, " %s |\n", strings.Join(ratios, "; "))
	return md.String()
}

// replica is the last replica a tool's first syncs made on one target, kept for its incremental passes.
type replica struct {
	t          tool
	dst, state string
	emu        *pcloudEmu // the pCloud target's emulator (nil for dir), its data in emuData
	emuData    string
}

// again reports whether the tool has an incremental pass on target tg.
func (r *replica) again(tg string) bool {
	if tg == targetPCloud {
		return r.t.pcloudAgain
	}
	return r.t.again != nil
}

// againCmd is the tool's incremental pass from src to r on target tg.
func (r *replica) againCmd(tg, src string) *exec.Cmd {
	if tg == targetPCloud {
		return r.t.pcloud(src, r.emu, r.state)
	}
	return r.t.again(src, r.dst, r.state)
}

// targetLabel names tree tr on target tg in the progress lines and errors.
func targetLabel(tr tree, tg string) string {
	if tg == targetPCloud {
		return tr.name + ", pCloud"
	}
	return tr.name
}

// close ends r's emulator and removes its folders.
func (r *replica) close() error {
	var err error
	if r.emu != nil {
		err = r.emu.close()
	}
	return errors.Join(err, os.RemoveAll(r.dst), os.RemoveAll(r.state), os.RemoveAll(r.emuData))
}

// firstSyncs times `runs` first syncs of each tool that syncs to target tg, each into an empty replica of its
// own (pCloud: a new emulator), the tools taking turns within each run as in the incremental passes: the
// machine's speed drifts by a third over minutes here, and a tool's five runs in a block met another machine
// than the next tool's (two tandem builds compared that way differed by more than the change between them). The
// order changes from run to run (turnOrder), so that no tool always runs right after the same one: a first sync
// timed right after rclone copy's was slower, whichever tool it was (rclone copy's own too; see results.md,
// ninth session), and with a fixed order tandem always came after it. It records each tool's runs in res and
// returns each tool's last replica for the incremental passes; the others
// are removed after the last run, never between two timed runs (see settle).
func firstSyncs(ts []tool, tr tree, tg, src, work string, runs int, res map[string]*result) (last []*replica, err error) {
	label := targetLabel(tr, tg)
	var done []*replica
	lastOf := map[int]*replica{}
	defer func() {
		keep := map[*replica]bool{}
		for ti := range ts {
			if r := lastOf[ti]; r != nil && err == nil {
				keep[r] = true
				last = append(last, r)
			}
		}
		var rerr error
		for _, d := range done {
			if !keep[d] {
				rerr = errors.Join(rerr, d.close())
			}
		}
		if err == nil && rerr == nil && len(done) > len(keep) {
			rerr = settle(work)
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			for _, r := range last {
				err = errors.Join(err, r.close())
			}
			last = nil
		}
	}()
	for i := range runs {
		for _, ti := range turnOrder(len(ts), i) {
			t := ts[ti]
			if t.missing != "" || (tg == targetPCloud && t.pcloud == nil) {
				continue
			}
			r := res[t.name]
			if r == nil {
				r = &result{}
				res[t.name] = r
			}
			rep := &replica{t: t, dst: filepath.Join(work, fmt.Sprintf("dst-%d-%d", ti, i)),
				state: filepath.Join(work, fmt.Sprintf("state-%d-%d", ti, i)), emuData: filepath.Join(work, fmt.Sprintf("emu-%d-%d", ti, i))}
			done = append(done, rep)
			for _, d := range []string{rep.dst, rep.state} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return nil, err
				}
			}
			cmd := t.first(src, rep.dst, rep.state)
			if tg == targetPCloud {
				if rep.emu, err = startPCloud(context.Background(), rep.emuData); err != nil {
					return nil, err
				}
				cmd = t.pcloud(src, rep.emu, rep.state)
			}
			fmt.Fprintf(os.Stderr, "== %s first sync %s run %d\n", t.name, label, i+1)
			if err := timedRun(cmd, tg, rep, src, work, r); err != nil {
				return nil, fmt.Errorf("%s, first sync %s: %w", t.name, label, err)
			}
			lastOf[ti] = rep
		}
	}
	return nil, nil // the deferred function collects the last replicas
}

// turnOrder is the order of n tools in run i: the rows of a Williams design (a Latin square whose first row is
// 0, 1, n-1, 2, n-2, ..., each next row adding one mod n; for an odd n, the same rows reversed after them). Over
// n runs (2n for an odd n) each tool runs in every place and right after each of the others; run i starts with
// tool i for the first n. Rotating the listed order alone keeps the tools' cycle: with three, the first always
// followed the last.
func turnOrder(n, i int) []int {
	base := make([]int, n)
	lo, hi := 1, n-1
	for k := 1; k < n; k++ {
		if k%2 == 1 {
			base[k], lo = lo, lo+1
		} else {
			base[k], hi = hi, hi-1
		}
	}
	order := make([]int, n)
	for k := range order {
		order[k] = (base[k] + i) % n
	}
	if n%2 == 1 && (i/n)%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// timedRun times cmd on replica rep after a sync(2), checks the replica against src and adds the run to r.
func timedRun(cmd *exec.Cmd, tg string, rep *replica, src, work string, r *result) error {
	// Every run starts on a quiet disk: the previous step (a first sync's gigabytes, the byte comparison's
	// reads) leaves the kernel writing back for tens of seconds, and a pass of one second timed during that
	// measured the writeback as much as the tool.
	//
	// And every run finds its source in the page cache: a first sync profiled half a minute after the run before
	// it had read the same source spent most of its off-CPU time waiting for reads of that source (this VM's
	// kernel reclaims cold file pages on its own: DAMON), and settle's 65 s wait falls before one tool's run
	// only. warm reads the whole source first.
	if _, err := warm(src); err != nil {
		return err
	}
	syscall.Sync()
	secs, rss, err := timed(cmd, work)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "   %.2f s\n", secs) // each run's time beside the medians of the table
	if tg == targetPCloud {
		err = rep.emu.check(src)
	} else {
		err = sameTree(src, rep.dst)
	}
	if err != nil {
		return fmt.Errorf("replica differs: %w", err)
	}
	r.secs, r.rss = append(r.secs, secs), append(r.rss, rss)
	return nil
}

// incremental times the passes after the first syncs, the tools taking turns within each run (tandem, then
// each peer, then tandem again): the machine's speed drifts by a third over minutes here, and a row timed one
// tool after the other measured the drift between them. A one-change run changes one file of src, which each
// tool then carries to its own replica.
func incremental(reps []*replica, tr tree, tg, src string, files []string, work string, runs int, scen []string, res map[string]map[string]*result) error {
	label := targetLabel(tr, tg)
	// One untimed pass per tool first: the timed ones start from warm caches, as the figures did, and
	// not the first of them alone from whatever the other tools' first syncs and removals left.
	for _, rep := range reps {
		if !rep.again(tg) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s warm-up pass %s\n", rep.t.name, label)
		if _, _, err := timed(rep.againCmd(tg, src), work); err != nil {
			return fmt.Errorf("%s, warm-up pass %s: %w", rep.t.name, label, err)
		}
	}
	for _, s := range scen {
		if s == "first sync" {
			continue
		}
		for i := range runs {
			if s == "one change" {
				if err := change(filepath.Join(src, files[(i*7919)%len(files)]), uint64(i)); err != nil {
					return err
				}
			}
			for _, rep := range reps {
				if !rep.again(tg) {
					continue
				}
				r := res[s][rep.t.name]
				if r == nil {
					r = &result{}
					res[s][rep.t.name] = r
				}
				fmt.Fprintf(os.Stderr, "== %s %s %s run %d\n", rep.t.name, s, label, i+1)
				if err := timedRun(rep.againCmd(tg, src), tg, rep, src, work, r); err != nil {
					return fmt.Errorf("%s, %s %s: %w", rep.t.name, s, label, err)
				}
			}
		}
	}
	return nil
}

// settle makes the disk under dir quiet after a removal, before the next timed run: a sync(2), and on ext4
// without a journal (this machine's disk) a wait of 65 s. That filesystem does not reuse an inode for 60 s after
// its deletion once the inode table is written back (ialloc.c, recently_deleted), and every file created
// meanwhile scans past the recently deleted ones: a 20,000-file first sync right after the removal of a replica
// took 8.4 to 13.4 s against 3.1 s a few minutes later, for rclone as for tandem, and whichever tool ran first
// after a removal paid it. The removal is not what the tools are timed for.
func settle(dir string) error {
	syscall.Sync()
	if settleWait <= 0 || !ext4NoJournal(dir) {
		return nil
	}
	fmt.Fprintf(os.Stderr, "== waiting %s: ext4 without a journal reuses no inode deleted in the last 60 s\n", settleWait)
	time.Sleep(settleWait) // the kernel's condition is a time: nothing to wait on instead
	return nil
}

// settleWait is settle's wait (-settle).
var settleWait = 65 * time.Second

// ext4NoJournal reports whether dir is on an ext2/3/4 filesystem mounted without a journal (no jbd2 entry for its
// device in /proc/fs/jbd2). Anything it cannot tell counts as journaled (no wait).
func ext4NoJournal(dir string) bool {
	var sf syscall.Statfs_t
	if err := syscall.Statfs(dir, &sf); err != nil || sf.Type != 0xEF53 {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false
	}
	ue, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev))))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(ue), "\n") {
		if dev, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			m, err := filepath.Glob("/proc/fs/jbd2/" + dev + "-*")
			return err == nil && len(m) == 0
		}
	}
	return false
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

// warm reads every file under root to its end, so that a timed run finds the source in the page cache, and
// returns how many bytes it read.
func warm(root string) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			m, err := f.Read(buf)
			n += int64(m)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return n, fmt.Errorf("read the source into the page cache: %w", err)
	}
	return n, nil
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
