package cli

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenDocsCmd is the hidden `tandem gen-docs DIR` that `make package` runs: the man pages (tandem(1) and one
// per command) and the bash, zsh and fish completions, all generated from the command definitions, so they
// never drift from --help.
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write the man pages and shell completions into DIR (for packaging)",
		Hidden: true,
		Args:   usageArgs(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return genDocs(c.Root(), args[0])
		},
	}
}

// genDocs writes DIR/man/man1/*.1.gz and DIR/completions/{tandem.bash,_tandem,tandem.fish}. The pages' date is
// SOURCE_DATE_EPOCH when set, so that a package build is reproducible.
func genDocs(root *cobra.Command, dir string) error {
	root.DisableAutoGenTag = true
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return usagef("SOURCE_DATE_EPOCH %q: %v", s, err)
		}
		date = time.Unix(n, 0).UTC()
	}
	manDir := filepath.Join(dir, "man", "man1")
	tmp := filepath.Join(dir, "man", ".plain")
	for _, d := range []string{manDir, tmp, filepath.Join(dir, "completions")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hdr := &doc.GenManHeader{Title: "TANDEM", Section: "1", Date: &date, Source: "tandem " + Version,
		Manual: "tandem manual"}
	if err := doc.GenManTree(root, hdr, tmp); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(tmp, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		// Debian wants man pages gzipped; no name or time in the gzip header keeps the build reproducible.
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if _, err := zw.Write(raw); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(manDir, filepath.Base(p)+".gz"), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	comp := map[string]func(*bytes.Buffer) error{
		"tandem.bash": func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) },
		"_tandem":     func(b *bytes.Buffer) error { return root.GenZshCompletion(b) },
		"tandem.fish": func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) },
	}
	for name, gen := range comp {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "completions", name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
