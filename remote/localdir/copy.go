package localdir

import (
	"io"
	"sync"
)

// copyBufs are the buffers file bytes are copied through. io.Copy makes a 32 KiB buffer per call: a first sync of
// 10,000 files made 310 MB of garbage so (half of all it allocated), and at 100,000 files each collection also
// marked the whole plan held in memory. A larger buffer also halves the syscalls of a big file's copy.
var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, 256<<10)
	return &b
}}

// copyBuffered is io.Copy through a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{dst}, src, *bp)
}

// writerOnly hides a destination's ReadFrom (an *os.File's would copy through a buffer of its own: the source is
// never a file it could splice from).
type writerOnly struct{ io.Writer }
