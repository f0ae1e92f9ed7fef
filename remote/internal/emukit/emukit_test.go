package emukit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testHandler serves a fixed body with a Content-Length, counting calls.
func testHandler(calls *atomic.Int32, body []byte, withLength bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	})
}

func setup(t *testing.T, withLength bool, withTLS bool) (*Kit, *Server, *http.Client, *atomic.Int32, []byte) {
	t.Helper()
	var calls atomic.Int32
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	k := New(Options{})
	var tc *TLS
	if withTLS {
		var err error
		if tc, err = LoadOrCreateTLS(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	s := StartTest(t, k.Wrap(testHandler(&calls, body, withLength)), k, tc)
	tr := &http.Transport{DisableKeepAlives: true}
	if tc != nil {
		tr.TLSClientConfig = tc.ClientConfig()
	}
	return k, s, &http.Client{Transport: tr, Timeout: 10 * time.Second}, &calls, body
}

func get(c *http.Client, url string) (*http.Response, []byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestNoFaultPassesThroughAndLogs(t *testing.T) {
	k, s, c, _, body := setup(t, true, false)
	resp, got, err := get(c, s.URL+"/listfolder?folderid=0&access_token=SECRET&auth=S2")
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("get: %v %v len %d", err, resp, len(got))
	}
	// The entry is appended when the handler returns, which can be just after the client has read the body.
	log := k.Log()
	for deadline := time.Now().Add(2 * time.Second); len(log) == 0 && time.Now().Before(deadline); log = k.Log() {
		time.Sleep(time.Millisecond)
	}
	if len(log) != 1 || log[0].Op != "listfolder" || log[0].BytesOut != int64(len(body)) || log[0].Status != 200 {
		t.Fatalf("log = %+v", log)
	}
	if strings.Contains(log[0].Query, "SECRET") || strings.Contains(log[0].Query, "S2") || log[0].Query != "folderid=0" {
		t.Fatalf("log leaks a token: %q", log[0].Query)
	}
	k.ResetLog()
	if len(k.Log()) != 0 {
		t.Fatal("ResetLog kept entries")
	}
}

func TestStatusRetryAfterForms(t *testing.T) {
	k, s, c, calls, _ := setup(t, true, false)
	if err := k.SetRules(
		Rule{Match: "^a$", Action: Action{Do: DoStatus, Status: 429, RetryAfter: 7}},
		Rule{Match: "^b$", Action: Action{Do: DoStatus, Status: 503, RetryAfter: 120, RetryAfterDate: true}},
	); err != nil {
		t.Fatal(err)
	}
	resp, _, err := get(c, s.URL+"/a")
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("a: %v %+v", err, resp)
	}
	resp, _, err = get(c, s.URL+"/b")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("b: %v %+v", err, resp)
	}
	when, err := http.ParseTime(resp.Header.Get("Retry-After"))
	if err != nil || time.Until(when) < 100*time.Second {
		t.Fatalf("Retry-After date %q: %v", resp.Header.Get("Retry-After"), err)
	}
	if calls.Load() != 0 {
		t.Fatalf("handler ran %d times behind a status fault", calls.Load())
	}
}

func TestResetAfterIsARealReset(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(withTLS), func(t *testing.T) {
			k, s, c, _, _ := setup(t, true, withTLS)
			if err := k.SetRules(Rule{Action: Action{Do: DoResetAfter, Bytes: 1000}}); err != nil {
				t.Fatal(err)
			}
			base := s.URL
			if withTLS {
				base = s.TLSURL
			}
			_, got, err := get(c, base+"/content")
			if err == nil {
				t.Fatalf("read %d bytes without an error", len(got))
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("want connection reset, got %v", err)
			}
			if len(got) > 1000 {
				t.Fatalf("got %d bytes, limit 1000", len(got))
			}
		})
	}
}

func TestTruncateGivesShortBody(t *testing.T) {
	for _, withLength := range []bool{true, false} {
		t.Run("length="+strconv.FormatBool(withLength), func(t *testing.T) {
			k, s, c, _, body := setup(t, withLength, false)
			if err := k.SetRules(Rule{Action: Action{Do: DoTruncateAt, Bytes: 5000}}); err != nil {
				t.Fatal(err)
			}
			resp, got, err := get(c, s.URL+"/x")
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 5000 {
				t.Fatalf("err %v, %d bytes", err, len(got))
			}
			if resp.ContentLength != int64(len(body)) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(body))
			}
		})
	}
}

func TestApplyThenResetRunsTheHandler(t *testing.T) {
	k, s, c, calls, _ := setup(t, true, false)
	if err := k.SetRules(Rule{Times: 1, Action: Action{Do: DoApplyThenReset}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(c, s.URL+"/deletefile"); err == nil {
		t.Fatal("no error on ack loss")
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
	// Times: 1 → the second call is clean.
	if resp, _, err := get(c, s.URL+"/deletefile"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second call: %v", err)
	}
}

func TestCorruptGarbageNthEvery(t *testing.T) {
	k, s, c, _, body := setup(t, true, false)
	if err := k.SetRules(
		Rule{Match: "corrupt", Action: Action{Do: DoCorruptByte, Offset: 70000 - 5000}},
		Rule{Match: "garbage", Nth: 2, Action: Action{Do: DoGarbage}},
		Rule{Match: "every", Every: 3, Action: Action{Do: DoStatus, Status: 500}},
	); err != nil {
		t.Fatal(err)
	}
	_, got, err := get(c, s.URL+"/corrupt")
	if err != nil || len(got) != len(body) || bytes.Equal(got, body) {
		t.Fatalf("corrupt: err %v, equal %v", err, bytes.Equal(got, body))
	}
	for i := 1; i <= 3; i++ {
		resp, got, err := get(c, s.URL+"/garbage")
		if err != nil {
			t.Fatal(err)
		}
		isHTML := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && bytes.Contains(got, []byte("<html"))
		if isHTML != (i == 2) || resp.StatusCode != 200 {
			t.Fatalf("call %d: html=%v status %d", i, isHTML, resp.StatusCode)
		}
	}
	var codes []int
	for range 6 {
		resp, _, err := get(c, s.URL+"/every")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{200, 200, 500, 200, 200, 500}; !equalInts(codes, want) {
		t.Fatalf("every=3: %v, want %v", codes, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStallAfterHoldsTheBody(t *testing.T) {
	k, s, _, _, _ := setup(t, true, false)
	if err := k.SetRules(Rule{Action: Action{Do: DoStallAfter, Bytes: 100}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/x", nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if !errors.Is(err, context.DeadlineExceeded) || len(got) != 100 {
		t.Fatalf("stall: err %v after %d bytes", err, len(got))
	}
}

func TestProbIsSeededAndHooksRun(t *testing.T) {
	run := func() []int {
		var calls atomic.Int32
		k := New(Options{})
		k.RegisterHook("teapot", func(w http.ResponseWriter, r *http.Request, a Action, next http.Handler) {
			w.WriteHeader(a.Code)
		})
		s := StartTest(t, k.Wrap(testHandler(&calls, []byte("ok"), true)), k, nil)
		if err := k.SetPlan(Plan{Seed: 42, Rules: []Rule{{Prob: 0.5, Action: Action{Do: "teapot", Code: 418}}}}); err != nil {
			t.Fatal(err)
		}
		var codes []int
		for range 20 {
			resp, _, err := get(http.DefaultClient, s.URL+"/p")
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, resp.StatusCode)
		}
		return codes
	}
	a, b := run(), run()
	if !equalInts(a, b) {
		t.Fatalf("same seed, different firings: %v vs %v", a, b)
	}
	n := 0
	for _, c := range a {
		if c == 418 {
			n++
		}
	}
	if n == 0 || n == 20 {
		t.Fatalf("prob 0.5 fired %d/20", n)
	}
}

func TestAdminEndpointAndYAML(t *testing.T) {
	k, s, c, _, _ := setup(t, true, false)
	plan := "seed: 1\nrules:\n  - match: ^upload\n    times: 1\n    action: {do: status, status: 502, retryAfter: 3, delay: 1s}\n"
	resp, err := http.Post(s.AdminURL+"/faults", "application/yaml", strings.NewReader(plan))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /faults: %v %v", err, resp)
	}
	resp.Body.Close()
	if f := k.Faults(); len(f) != 1 || f[0].Rule.Action.Delay != time.Second {
		t.Fatalf("faults = %+v", f)
	}
	if r, _, _ := get(c, s.URL+"/uploadfile"); r.StatusCode != 502 {
		t.Fatalf("status %d", r.StatusCode)
	}
	// JSON works through the same endpoint; unknown keys are refused.
	resp, _ = http.Post(s.AdminURL+"/faults", "application/json", strings.NewReader(`{"rules":[{"action":{"do":"garbage"},"nht":2}]}`))
	if resp.StatusCode != 400 {
		t.Fatalf("misspelt key accepted: %d", resp.StatusCode)
	}
	resp, _ = http.Post(s.AdminURL+"/faults", "application/json", strings.NewReader(`{"rules":[{"action":{"do":"nosuch"}}]}`))
	if resp.StatusCode != 400 {
		t.Fatalf("unknown action accepted: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("DELETE", s.AdminURL+"/faults", nil)
	if _, err := http.DefaultClient.Do(req); err != nil || len(k.Faults()) != 0 {
		t.Fatalf("DELETE /faults: %v, %d rules left", err, len(k.Faults()))
	}
	_, b, err := get(c, s.AdminURL+"/log")
	var log []Entry
	if err != nil || json.Unmarshal(b, &log) != nil || len(log) != 1 || log[0].Fault != DoStatus || log[0].Status != 502 {
		t.Fatalf("GET /log: %v %s", err, b)
	}
}

func TestTLSReloadKeepsCA(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CAPEM, b.CAPEM) {
		t.Fatal("CA changed across restarts")
	}
	c, err := LoadOrCreateTLS(dir, "emu.example")
	if err != nil || !bytes.Equal(a.CAPEM, c.CAPEM) || !covers(c.Config.Certificates[0].Leaf, []string{"emu.example", "::1"}) {
		t.Fatalf("extra host: %v", err)
	}
}
