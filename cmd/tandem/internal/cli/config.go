package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/config"
)

func newConfigCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check the config file",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(c *cobra.Command, args []string) error { return c.Help() },
	}
	var path string
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the config file and list every problem as file:line: field: message",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			return runConfigCheck(app, path, c.OutOrStdout())
		},
	}
	check.Flags().StringVar(&path, "config", "", "config file (default ~/.config/tandem/config.yaml)")
	c.AddCommand(check)
	return c
}

// errConfigProblems ends `config check` with exit code 1 once the problems are printed.
var errConfigProblems = errors.New("the config file has problems")

func runConfigCheck(app *App, flag string, w io.Writer) error {
	path, err := configPath(flag)
	if err != nil {
		return err
	}
	c, err := config.Load(path, false)
	probs := flattenErr(err)
	if c != nil { // parsed, maybe with problems: what parsed is validated too, so every problem shows at once
		probs = append(probs, flattenErr(c.Validate(validateOptions(app.Registry)))...)
	}
	if len(probs) == 0 {
		fmt.Fprintf(w, "%s: ok, %d pairs\n", path, len(c.Pairs))
		return nil
	}
	for _, p := range probs {
		fmt.Fprintln(w, p)
	}
	return fmt.Errorf("%w (%d)", errConfigProblems, len(probs))
}

func flattenErr(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
