package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tandemsync/tandem/engine"
	"github.com/tandemsync/tandem/remote"
	"github.com/tandemsync/tandem/state"
)

// Exit codes of every tandem command (DESIGN.md "Interfaces").
const (
	ExitOK    = 0 // the pass completed; conflicts were kept both ways and are listed, skipped paths are listed
	ExitError = 1 // errors and safety stops: nothing unsafe was done, but the pair is not in sync
	ExitUsage = 2 // the command line is wrong: nothing was read or written
)

// usageError marks a mistake in the command line (arguments, flags, a remote spec or a path that cannot be a
// sync root). It maps to exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// errProblems ends a pass in which some actions failed: the failures are listed in the output, and the pair is
// not in sync until a later pass succeeds.
var errProblems = errors.New("some paths could not be synced")

// ExitCode maps a command's error to the process exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case IsUsage(err):
		return ExitUsage
	case errors.Is(err, engine.ErrSafetyStop), errors.Is(err, state.ErrInUse), errors.Is(err, state.ErrCorrupt),
		errors.Is(err, state.ErrNewerSchema), errors.Is(err, errProblems):
		return ExitError
	}
	return ExitError
}

// loginHint makes a refused credential say what to do: every provider's refusal matches remote.ErrUnauthorized,
// but only some of their messages name the command.
func loginHint(scheme string, err error) error {
	if err == nil || !errors.Is(err, remote.ErrUnauthorized) || strings.Contains(err.Error(), "tandem login") {
		return err
	}
	return fmt.Errorf("%w; log in again with \"tandem login %s\" (or give a valid --access-token)", err, scheme)
}
