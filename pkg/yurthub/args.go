package yurthub

import "strings"

// flagName is "--name" of "--name=value" (or of "--name").
func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}

// SetArgs returns cmd with every "--flag=value" of args set: an entry of
// cmd with the same flag name is replaced in place (all of them, if the
// flag is there twice), a flag cmd lacks is appended. cmd[0] (the program)
// is never touched.
func SetArgs(cmd []string, args ...string) []string {
	out := append([]string(nil), cmd...)
	for _, a := range args {
		name := flagName(a)
		found := false
		for i := 1; i < len(out); i++ {
			if flagName(out[i]) == name {
				if !found {
					out[i] = a
					found = true
					continue
				}
				out = append(out[:i], out[i+1:]...)
				i--
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	return out
}

// ArgValue is the value of --name in cmd ("" and false when absent).
func ArgValue(cmd []string, name string) (string, bool) {
	for _, a := range cmd {
		if n, v, ok := strings.Cut(a, "="); ok && n == name {
			return v, true
		}
	}
	return "", false
}

// RemoveArgs returns cmd without any flag named in names ("--name").
func RemoveArgs(cmd []string, names ...string) []string {
	out := make([]string, 0, len(cmd))
	for i, a := range cmd {
		drop := false
		for _, n := range names {
			if i > 0 && flagName(a) == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, a)
		}
	}
	return out
}
