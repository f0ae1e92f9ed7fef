package emukit

import (
	"io"
	"net/http"
)

// Injector is what an emulator offers the admin endpoint for hostile-name tests (RELIABILITY SEC-01, issue 14
// item 3): items whose names break every rule of the API (`..`, `a/b`, NUL, 300 bytes, `.tandem` ...), as a
// hostile or buggy server would list them. Parent and path are ordinary absolute paths in the emulator's tree;
// name is taken byte for byte and never checked. Not provider behaviour: a test seam.
type Injector interface {
	// InjectFile creates a file name holding data in the folder parent.
	InjectFile(parent, name string, data []byte) error
	// InjectFolder creates an empty folder name in the folder parent.
	InjectFolder(parent, name string) error
	// InjectRename renames the file or folder at path to name, in the same folder, as a rename by another client.
	InjectRename(path, name string) error
}

// SetInjector enables the admin endpoint's /inject routes.
func (k *Kit) SetInjector(i Injector) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inject = i
}

func (k *Kit) injector() Injector {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.inject
}

// injectHandler serves
//
//	POST /inject/file?parent=P&name=N     body: the content
//	POST /inject/folder?parent=P&name=N
//	POST /inject/rename?path=P&name=N
//
// The name is a query parameter, so any byte can be sent percent-encoded (%00, %2F, %FF); "name=" is the empty
// name. 204 on success, 400 with the emulator's error otherwise, 404 when the emulator has no injector.
func (k *Kit) injectHandler(w http.ResponseWriter, r *http.Request) {
	inj := k.injector()
	if inj == nil {
		http.Error(w, "this emulator cannot inject items", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if _, ok := q["name"]; !ok {
		http.Error(w, "name= is required (it may be empty)", http.StatusBadRequest)
		return
	}
	name := q.Get("name")
	var err error
	switch r.PathValue("kind") {
	case "file":
		var data []byte
		if data, err = io.ReadAll(io.LimitReader(r.Body, 64<<20)); err == nil {
			err = inj.InjectFile(q.Get("parent"), name, data)
		}
	case "folder":
		err = inj.InjectFolder(q.Get("parent"), name)
	case "rename":
		err = inj.InjectRename(q.Get("path"), name)
	default:
		http.Error(w, "want /inject/file, /inject/folder or /inject/rename", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
