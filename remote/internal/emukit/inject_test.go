package emukit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeInjector struct{ got []string }

func (f *fakeInjector) InjectFile(parent, name string, data []byte) error {
	f.got = append(f.got, "file "+parent+" "+name+" "+string(data))
	return nil
}
func (f *fakeInjector) InjectFolder(parent, name string) error {
	f.got = append(f.got, "folder "+parent+" "+name)
	return nil
}
func (f *fakeInjector) InjectRename(path, name string) error {
	f.got = append(f.got, "rename "+path+" "+name)
	return nil
}

// TestInjectRoutes: the admin endpoint hands any bytes of a name to the emulator's Injector untouched, and
// says so when the emulator has none or the name is missing.
func TestInjectRoutes(t *testing.T) {
	k := New(Options{})
	h := k.AdminHandler()
	post := func(target, body string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
		return rec.Code
	}
	if c := post("/inject/file?parent=/S&name=x", ""); c != http.StatusNotFound {
		t.Fatalf("without an injector: %d", c)
	}
	f := &fakeInjector{}
	k.SetInjector(f)
	for _, c := range []struct {
		target, body string
		code         int
	}{
		{"/inject/file?parent=/S&name=a%2Fb%00%FF", "evil", http.StatusNoContent},
		{"/inject/folder?parent=/S&name=", "", http.StatusNoContent},
		{"/inject/rename?path=/S/x&name=..", "", http.StatusNoContent},
		{"/inject/rename?path=/S/x", "", http.StatusBadRequest},
		{"/inject/other?name=x", "", http.StatusNotFound},
	} {
		if got := post(c.target, c.body); got != c.code {
			t.Errorf("%s: %d, want %d", c.target, got, c.code)
		}
	}
	want := []string{"file /S a/b\x00\xff evil", "folder /S ", "rename /S/x .."}
	if strings.Join(f.got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", f.got, want)
	}
}
