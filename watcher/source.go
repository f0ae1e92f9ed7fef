package watcher

import "github.com/fsnotify/fsnotify"

// source is the part of fsnotify the loop uses. It is an interface so that tests can feed overflow and
// watch-limit errors, which a test machine cannot produce on demand.
type source interface {
	Add(path string) error    // one directory, not recursive
	Remove(path string) error // may fail when the kernel already dropped the watch; callers ignore that
	Events() <-chan fsnotify.Event
	Errors() <-chan error
	Close() error // stops fsnotify's reader goroutine and waits for it
}

type fsSource struct{ w *fsnotify.Watcher }

func newFSSource() (source, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return fsSource{w}, nil
}

func (s fsSource) Add(path string) error         { return s.w.Add(path) }
func (s fsSource) Remove(path string) error      { return s.w.Remove(path) }
func (s fsSource) Events() <-chan fsnotify.Event { return s.w.Events }
func (s fsSource) Errors() <-chan error          { return s.w.Errors }
func (s fsSource) Close() error                  { return s.w.Close() }
