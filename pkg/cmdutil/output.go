package cmdutil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IOStreams are the standard streams of a command; tests replace them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // program output: results, JSON
	ErrOut io.Writer // progress: phase-tagged lines, warnings
}

// StdIO returns the process's streams.
func StdIO() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// IsTerminal reports whether r is an interactive terminal.
func IsTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Logf prints a progress line tagged with a phase, kubeadm style: "[phase] message".
func (s IOStreams) Logf(phase, format string, a ...any) {
	fmt.Fprintf(s.ErrOut, "[%s] %s\n", phase, fmt.Sprintf(format, a...))
}

// Narration is where a command's progress and dry-run lines go for the
// output format o: with -o json stdout carries the JSON alone, so they go
// to ErrOut; otherwise the streams are s.
func (s IOStreams) Narration(o string) IOStreams {
	if o == OutputJSON {
		s.Out = s.ErrOut
	}
	return s
}

// PrintJSON writes v as indented JSON to Out.
func (s IOStreams) PrintJSON(v any) error {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Output formats accepted by -o.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// ValidateOutput checks the -o value.
func ValidateOutput(o string) error {
	switch o {
	case "", OutputText, OutputJSON:
		return nil
	}
	return Usagef("use -o text or -o json", "unknown output format %q", o)
}

// Confirm asks a yes/no question on the terminal. It refuses to prompt when
// stdin is not a terminal: the caller must pass --force (or --yes) instead.
func Confirm(ctx context.Context, s IOStreams, question, forceFlag string) error {
	if !IsTerminal(s.In) {
		return Usagef("pass --"+forceFlag+" to run without a terminal",
			"refusing to prompt: standard input is not a terminal")
	}
	fmt.Fprintf(s.ErrOut, "%s [y/N]: ", question)
	answered := make(chan string, 1)
	go func() {
		var answer string
		fmt.Fscanln(s.In, &answer)
		answered <- answer
	}()
	var answer string
	select {
	case answer = <-answered:
	case <-ctx.Done():
		// Ctrl-C at the prompt: nothing was done.
		fmt.Fprintln(s.ErrOut)
		return &Error{Code: ExitInterrupted, Err: fmt.Errorf("interrupted at the prompt: nothing was done")}
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return &Error{Code: ExitAborted, Err: fmt.Errorf("aborted by the user")}
}
