// Command gentree writes a benchmark tree of test/bench (see package treegen):
//
//	gentree -files 10000 -folders 500 DIR     files of 0-256 KiB, log-uniform sizes, in folders up to depth 6
//	gentree -big 4 -bigsize 256MiB DIR         four large files
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tandemsync/tandem/test/bench/treegen"
)

func main() {
	files := flag.Int("files", 10000, "number of small files")
	folders := flag.Int("folders", 0, "number of folders (0: one per 20 files)")
	depth := flag.Int("depth", 6, "deepest folder level")
	maxSize := flag.Int64("maxsize", 256<<10, "largest small file, bytes")
	big := flag.Int("big", 0, "number of large files instead of small ones")
	bigSize := flag.String("bigsize", "256MiB", "size of each large file")
	seed := flag.Uint64("seed", 15, "random seed")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gentree [flags] DIR")
		os.Exit(2)
	}
	root := flag.Arg(0)
	var err error
	if *big > 0 {
		var n int64
		if n, err = treegen.ParseSize(*bigSize); err == nil {
			err = treegen.Big(root, *big, n, *seed)
		}
	} else {
		nf := *folders
		if nf == 0 {
			nf = max(1, *files/20)
		}
		err = treegen.Small(root, *files, nf, *depth, *maxSize, *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}
