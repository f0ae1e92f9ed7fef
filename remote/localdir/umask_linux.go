package localdir

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// umask is the process's file mode creation mask, read once from /proc/self/status (Linux 4.7+): the umask(2)
// call can only read it by changing it, which would race with files other goroutines create meanwhile.
var umask = sync.OnceValue(func() fs.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o022
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & 0o777
			}
		}
	}
	return 0o022
})

// newFileMode is the mode of a file that is new on this side: 0644 less the umask, as an editor creates it.
func newFileMode() fs.FileMode { return 0o644 &^ umask() }
