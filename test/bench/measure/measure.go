// Package measure is what the benchmark commands of test/bench share: running a process while sampling its
// memory from /proc, and replacing one command's own section of results.md without touching the others.
package measure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Usage is what one run of a process cost. The memory figures are the largest values seen in /proc/PID/status
// samples (KiB): a peak shorter than the sampling interval can be missed. RssAnon is the heap and stacks;
// RssFile is mapped files, for tandem mostly the state database bbolt maps (VmRSS adds the two, which is why it
// says little about tandem's own memory).
type Usage struct {
	Wall      time.Duration
	User, Sys time.Duration // the process's CPU time, from its rusage
	PeakAnon  int64         // KiB
	PeakFile  int64         // KiB
	PeakRSS   int64         // KiB, VmRSS
	HWM       int64         // KiB, VmHWM (the kernel's own peak of VmRSS) at the last sample
	Samples   int
}

// CPU is user plus system time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// Status is the memory part of one /proc/PID/status read, in KiB.
type Status struct {
	Anon, File, RSS, HWM int64
	ok                   bool // the process still had its memory (a zombie's status has no Vm or Rss lines)
}

// ParseStatus reads the RssAnon, RssFile, VmRSS and VmHWM lines of /proc/PID/status text.
func ParseStatus(text []byte) (Status, error) {
	var s Status
	for line := range bytes.Lines(text) {
		k, v, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		var dst *int64
		switch string(k) {
		case "RssAnon":
			dst = &s.Anon
		case "RssFile":
			dst = &s.File
		case "VmRSS":
			dst = &s.RSS
		case "VmHWM":
			dst = &s.HWM
		default:
			continue
		}
		f := strings.Fields(string(v))
		if len(f) != 2 || f[1] != "kB" {
			return Status{}, fmt.Errorf("/proc status line %q: want a number of kB", bytes.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Status{}, fmt.Errorf("/proc status line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = n
		s.ok = true
	}
	return s, nil
}

// Run starts cmd, samples its /proc status every interval until it exits, and returns what it cost. An error
// from the command is returned with the usage measured so far. The status file is opened once and re-read at
// offset 0, so a sample never reads another process that got the PID after this one was reaped.
func Run(ctx context.Context, cmd *exec.Cmd, every time.Duration) (Usage, error) {
	return run(ctx, cmd, every, nil)
}

// run is Run with a hook that sees every sample (the test lets its child exit once a sample saw its memory).
func run(ctx context.Context, cmd *exec.Cmd, every time.Duration, onSample func(Status)) (Usage, error) {
	var u Usage
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return u, err
	}
	f, openErr := os.Open(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	if openErr != nil {
		// Not Linux, or the process is already gone: time only.
		waitErr = <-done
	} else {
		buf := make([]byte, 8<<10)
		tick := time.NewTicker(every)
	loop:
		for {
			if n, err := f.ReadAt(buf, 0); err == nil || errors.Is(err, io.EOF) {
				if s, err := ParseStatus(buf[:n]); err == nil && s.ok {
					u.PeakAnon, u.PeakFile, u.PeakRSS = max(u.PeakAnon, s.Anon), max(u.PeakFile, s.File), max(u.PeakRSS, s.RSS)
					u.HWM = max(u.HWM, s.HWM)
					u.Samples++
					if onSample != nil {
						onSample(s)
					}
				}
			}
			select {
			case waitErr = <-done:
				break loop
			case <-tick.C:
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				waitErr = <-done
				break loop
			}
		}
		tick.Stop()
		f.Close()
	}
	u.Wall = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		u.User, u.Sys = ps.UserTime(), ps.SystemTime()
	}
	if waitErr == nil && ctx.Err() != nil {
		waitErr = ctx.Err()
	}
	return u, waitErr
}

// Section markers: a command's section of results.md sits between BeginMarker(name) and EndMarker(name).
func BeginMarker(name string) string {
	return "<!-- begin " + name + " (written by the command; edits inside are lost) -->"
}

// EndMarker ends a section (see BeginMarker).
func EndMarker(name string) string { return "<!-- end " + name + " -->" }

// ReplaceSection returns doc with the text between name's markers replaced by section, or with the section
// (inside new markers) appended when doc has none. Everything outside the markers is kept as it was.
func ReplaceSection(doc, name, section string) (string, error) {
	begin, end := BeginMarker(name), EndMarker(name)
	block := begin + "\n" + strings.TrimRight(section, "\n") + "\n" + end + "\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	switch {
	case i < 0 && j < 0:
		if doc == "" {
			return block, nil
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + block, nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the %q section's markers are broken (one missing or out of order): fix them by hand", name)
	case strings.Count(doc, begin) > 1 || strings.Count(doc, end) > 1:
		return "", fmt.Errorf("the %q section's markers appear more than once: fix them by hand", name)
	}
	rest := doc[j+len(end):]
	rest = strings.TrimPrefix(rest, "\n")
	return doc[:i] + block + rest, nil
}

// WriteSection replaces name's section of the file at path (creating the file if need be), keeping the rest.
func WriteSection(path, name, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := ReplaceSection(string(old), name, section)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// Loadavg is the 1-minute load average ("?" when unknown), printed beside figures taken on a shared machine.
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// Kernel names the running kernel.
func Kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// NumCPU counts the processors /proc/cpuinfo lists (0 when unknown).
func NumCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}
