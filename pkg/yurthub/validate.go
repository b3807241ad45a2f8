package yurthub

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// The image reference grammar (an optional registry host, then
// lower-case path components, an optional tag, an optional digest), as
// container runtimes parse it.
var (
	hostLabel = `[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`
	// A first component is a host only with a dot or a port, or localhost.
	imageHost  = `(?:(?:localhost(?::[0-9]+)?|` + hostLabel + `(?:\.` + hostLabel + `)+(?::[0-9]+)?|` + hostLabel + `:[0-9]+)/)?`
	imagePath  = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*`
	imageTag   = `(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?`
	imageDigst = `(?:@sha256:[a-f0-9]{64})?`
	imageRef   = regexp.MustCompile(`^` + imageHost + imagePath + imageTag + imageDigst + `$`)
	argName    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// ValidateImage checks that ref is one image reference such as
// docker.io/openyurt/yurthub:v1.7.0: nothing else (spaces, control
// characters, YAML) can ride along into a manifest.
func ValidateImage(ref string) error {
	if len(ref) > 255 || !imageRef.MatchString(ref) {
		return fmt.Errorf("%q is not an image reference (registry/name:tag or name@sha256:digest)", ref)
	}
	return nil
}

// ValidateExtraArgs checks that every entry is one yurthub flag, "--name"
// or "--name=value", with a lower-case name and a value without control
// characters (no newline, carriage return or tab).
func ValidateExtraArgs(args []string) error {
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !argName.MatchString(name) {
			return fmt.Errorf("%q is not a yurthub flag: write it as --flag=value (e.g. --enable-dummy-if=false)", a)
		}
		if i := strings.IndexFunc(value, unicode.IsControl); i >= 0 {
			return fmt.Errorf("%q holds a control character (%q) in its value", a, value[i:i+1])
		}
	}
	return nil
}
