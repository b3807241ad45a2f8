// Package cmdutil holds what every yurtadm command shares: exit codes and
// errors with hints, the output printer and the confirmation prompt.
package cmdutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Exit codes. Scripts may rely on them; docs/exit-codes.md lists them.
const (
	ExitOK        = 0
	ExitError     = 1 // a step failed
	ExitUsage     = 2 // bad flags or arguments; nothing was touched
	ExitPreflight = 3 // a preflight check failed; nothing was touched
	ExitTimeout   = 4 // waited too long for a component
	ExitAborted   = 5 // the user declined the prompt
	ExitUnhealthy = 6 // yurtadm doctor found a failing check
	// ExitInterrupted: SIGINT or SIGTERM stopped the command (128 + SIGINT,
	// as shells report it); a join rolled back what it wrote, a reset
	// finished the step it was in.
	ExitInterrupted = 130
)

// Error is an error with an exit code and a hint the user can act on.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Usagef returns an ExitUsage error: the input is wrong and nothing was done.
func Usagef(hint, format string, a ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, a...), Hint: hint}
}

// WithHint wraps err with a hint and exit code, keeping the code of an inner
// *Error when code is 0.
func WithHint(err error, code int, hint string) error {
	if err == nil {
		return nil
	}
	if code == 0 {
		code = ExitCode(err)
	}
	return &Error{Code: code, Err: err, Hint: hint}
}

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	return ExitError
}

// Hint returns the outermost hint in err's chain.
func Hint(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}

// ValidateHostRoot checks a --host-root value: an absolute path of an
// existing directory (a node's root file system mounted elsewhere).
func ValidateHostRoot(flag, root string) error {
	if !filepath.IsAbs(root) {
		return Usagef("pass an absolute directory, e.g. --"+flag+" /", "--%s %q is not absolute", flag, root)
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return Usagef("pass an existing directory", "--%s %q is not a directory", flag, root)
	}
	return nil
}
